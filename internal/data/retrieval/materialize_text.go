package retrieval

import (
	"fmt"
	"time"
)

// String says what materializing the set did, in one line, as `atrium
// materialize` reports it.
func (r MaterializeResult) String() string {
	if r.Skipped {
		return fmt.Sprintf("%s: already materialized up to %s", r.Set, r.End.Format(time.RFC3339))
	}
	if r.NoData {
		return fmt.Sprintf("%s: no offline data up to %s: nothing written (run `atrium run %s` for those days first)", r.Set, r.End.Format(time.RFC3339), r.Set)
	}
	from := "the beginning"
	if !r.From.IsZero() {
		from = r.From.Format(time.RFC3339)
	}
	return fmt.Sprintf("%s: %d keys written (rows after %s up to %s) in %s",
		r.Set, r.Rows, from, r.End.Format(time.RFC3339), r.Duration.Round(time.Millisecond))
}
