package cassandra

import (
	"context"
	"errors"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// TestSlowDDL: a statement of migrate the node did not answer in time is
// run again until it answers or migrate's time is up; other errors end it
// at once.
func TestSlowDDL(t *testing.T) {
	tests := []struct {
		name    string
		errs    []error // what each call returns; past the end, nil
		timeout time.Duration
		calls   int // 0: not checked (the clock decides)
		want    error
	}{
		{"answered after two timeouts", []error{gocql.ErrTimeoutNoResponse, gocql.ErrTimeoutNoResponse}, time.Minute, 3, nil},
		{"another error is not retried", []error{gocql.ErrNoConnections}, time.Minute, 1, gocql.ErrNoConnections},
		{"time up", []error{gocql.ErrTimeoutNoResponse, gocql.ErrTimeoutNoResponse, gocql.ErrTimeoutNoResponse, gocql.ErrTimeoutNoResponse, gocql.ErrTimeoutNoResponse}, 300 * time.Millisecond, 0, gocql.ErrTimeoutNoResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			calls := 0
			err := slowDDL(ctx, func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("slowDDL = %v, want %v", err, tt.want)
			}
			if tt.calls != 0 && calls != tt.calls {
				t.Errorf("%d calls, want %d", calls, tt.calls)
			}
		})
	}
}
