package retrieval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/data/online"
)

// TestStoreErrorClasses: which online store errors become 503s (the store
// did not answer or cannot be reached) and which stay what they are.
func TestStoreErrorClasses(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"backend marks unavailable", fmt.Errorf("read s (1): %w: gocql: no hosts available in the pool", online.ErrUnavailable), true},
		{"deadline", fmt.Errorf("read s (1): %w", context.DeadlineExceeded), true},
		{"connection lost", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"canceled by the client", fmt.Errorf("read: %w", context.Canceled), false},
		{"bad stored data", fmt.Errorf("read: %w", online.ErrFormat), false},
		{"other", errors.New("syntax error in CQL"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := storeError(context.Background(), time.Second, tt.err)
			if errors.Is(got, ErrStoreUnavailable) != tt.unavailable {
				t.Errorf("storeError(%v) = %v: unavailable=%v, want %v", tt.err, got, errors.Is(got, ErrStoreUnavailable), tt.unavailable)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("storeError(%v) = %v: lost the cause", tt.err, got)
			}
		})
	}
}
