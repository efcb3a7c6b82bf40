package cassandra

import (
	"context"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// retryable is the part of a query the driver shows a retry policy.
type retryable struct{ ctx context.Context }

func (r retryable) Attempts() int                     { return 1 }
func (r retryable) SetConsistency(gocql.Consistency)  {}
func (r retryable) GetConsistency() gocql.Consistency { return gocql.One }
func (r retryable) Context() context.Context          { return r.ctx }

// TestMigrationRetry: a statement of migrate the node did not answer in
// time is sent again to the same node while migrate's time lasts; other
// errors end it at once.
func TestMigrationRetry(t *testing.T) {
	live := context.Background()
	over, cancel := context.WithCancel(live)
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		attempt bool
		retry   gocql.RetryType
	}{
		{"no answer in time", live, gocql.ErrTimeoutNoResponse, true, gocql.Retry},
		{"no answer, time up", over, gocql.ErrTimeoutNoResponse, false, gocql.Retry},
		{"another error", live, gocql.ErrNoConnections, true, gocql.Rethrow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := migrationRetry{}
			if got := p.Attempt(retryable{tt.ctx}); got != tt.attempt {
				t.Errorf("Attempt = %v, want %v", got, tt.attempt)
			}
			if got := p.GetRetryType(tt.err); got != tt.retry {
				t.Errorf("GetRetryType(%v) = %v, want %v", tt.err, got, tt.retry)
			}
		})
	}
}
