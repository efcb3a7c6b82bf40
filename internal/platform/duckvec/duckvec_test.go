package duckvec_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/platform/duckvec"
)

func open(t *testing.T) *duckvec.Conn {
	t.Helper()
	db, err := duckvec.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	c, err := db.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestVectors reads every kind of vector the package hands over, NULLs
// included, from a result of more than one chunk (5,000 rows).
func TestVectors(t *testing.T) {
	c := open(t)
	long := strings.Repeat("x", 40) // stored behind a pointer, not inline
	q := `SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE i / 2 END::DOUBLE, i::BIGINT, (i * 3)::UBIGINT,
		CASE WHEN i % 5 = 0 THEN NULL WHEN i % 2 = 0 THEN 'short' || i ELSE '` + long + `' || i END
		FROM range(5000) t(i)`
	var (
		floats, ints []float64
		uints        []uint64
		texts        []string
		nulls        [2]int
		chunks       int
	)
	err := c.Query(context.Background(), q, func(ch *duckvec.Chunk) error {
		chunks++
		f, valid := duckvec.Values[float64](ch, 0), ch.Valid(0)
		text := ch.Text(3)
		for r := range ch.Len() {
			if valid(r) {
				floats = append(floats, f[r])
			} else {
				nulls[0]++
			}
			if s, ok := text(r); ok {
				texts = append(texts, strings.Clone(s))
			} else {
				nulls[1]++
			}
		}
		for _, v := range duckvec.Values[int64](ch, 1) {
			ints = append(ints, float64(v))
		}
		uints = append(uints, duckvec.Values[uint64](ch, 2)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chunks < 2 || len(ints) != 5000 || len(uints) != 5000 {
		t.Fatalf("%d chunks, %d BIGINT and %d UBIGINT values, want 2 or more chunks of 5000 rows", chunks, len(ints), len(uints))
	}
	// 715 multiples of 7 and 1000 of 5 below 5000.
	if nulls != [2]int{715, 1000} || len(floats) != 5000-715 || len(texts) != 4000 {
		t.Fatalf("NULLs %v, %d doubles, %d strings", nulls, len(floats), len(texts))
	}
	for k, i := range []int{1, 2, 3} {
		if floats[k] != float64(i)/2 {
			t.Errorf("double %d = %v, want %v", k, floats[k], float64(i)/2)
		}
	}
	if ints[4999] != 4999 || uints[4999] != 3*4999 {
		t.Errorf("last BIGINT %v, UBIGINT %v", ints[4999], uints[4999])
	}
	if texts[0] != long+"1" || texts[1] != "short2" || !slices.Contains(texts, long+"4999") {
		t.Errorf("strings %q, %q...", texts[0], texts[1])
	}
}

func TestCountAndErrors(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	if n, err := c.Count(ctx, "SELECT count(*) FROM range(12345)"); err != nil || n != 12345 {
		t.Errorf("count %d, %v; want 12345", n, err)
	}
	if err := c.Exec(ctx, "SELECT * FROM no_such_table"); err == nil || !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("error %v, want one naming no_such_table", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Exec(cancelled, "SELECT 1"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// A mask of all-valid rows reads as such.
	err := c.Query(ctx, "SELECT 1.5::DOUBLE FROM range(3)", func(ch *duckvec.Chunk) error {
		valid := ch.Valid(0)
		for r := range ch.Len() {
			if !valid(r) || math.IsNaN(duckvec.Values[float64](ch, 0)[r]) {
				t.Errorf("row %d invalid", r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
