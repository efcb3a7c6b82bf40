package demo

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	// DuckDB writes the Parquet form of the ranking set.
	_ "github.com/duckdb/duckdb-go/v2"
)

// rankingColumns are the columns of a ranking set, in file order, with their
// DuckDB types. The feature columns are what a ranker can observe at search time;
// position is deliberately absent (it is the logging ranker's output, and a model
// that learns it would re-learn the old order) and so are the ids.
var rankingColumns = []struct{ name, typ string }{
	{"session_id", "BIGINT"},          // the query id: rows of a session are consecutive
	{"label", "INTEGER"},              // 0 shown, 1 clicked, 2 visit requested
	{"rent", "DOUBLE"},                // rent in force at the search
	{"area_m2", "DOUBLE"},             //
	{"bedrooms", "INTEGER"},           //
	{"price_per_m2", "DOUBLE"},        // rent / area_m2
	{"neighborhood", "VARCHAR"},       // categorical
	{"listing_age_days", "DOUBLE"},    // days since the listing was published
	{"days_since_update", "DOUBLE"},   // days since its rent last changed (or was published)
	{"budget", "DOUBLE"},              // the user's
	{"preferred_bedrooms", "INTEGER"}, //
	{"rent_to_budget", "DOUBLE"},      // rent / budget
	{"bedrooms_diff", "INTEGER"},      // bedrooms - preferred_bedrooms
	{"neighborhood_match", "INTEGER"}, // 1 when the neighborhood is one of the user's preferred
}

// TruthColumn is the optional last column of a ranking set: the true utility U.
// It is the answer, not a feature: drop it before training.
const TruthColumn = "true_utility"

// RankingOptions configures WriteRanking.
type RankingOptions struct {
	// TestPath, when set, receives the sessions of the last TestDays days (a
	// time-ordered split); the others go to the main path.
	TestPath string
	TestDays int
	// Truth adds the true_utility column.
	Truth bool
	// Progress is told about written rows.
	Progress Progress
}

// RankingSummary counts the rows and sessions of each file written.
type RankingSummary struct {
	Rows, Sessions         int64
	TestRows, TestSessions int64
}

// WriteRanking writes a learning-to-rank training set: one row per (session,
// listing impression), rows of a session consecutive, with the graded label
// (0 impression, 1 click, 2 visit request), the session id as query id and the
// feature columns of rankingColumns. The format follows the extension: .csv or
// .parquet. Days are generated in parallel into temporary parts, then assembled in
// day order; the files appear only when complete.
func (m *Market) WriteRanking(ctx context.Context, path string, opt RankingOptions) (RankingSummary, error) {
	var sum RankingSummary
	if opt.TestDays < 0 || opt.TestDays >= m.Config.Days {
		return sum, fmt.Errorf("ranking set: test days %d: want 0 <= test days < days (%d)", opt.TestDays, m.Config.Days)
	}
	if (opt.TestPath == "") != (opt.TestDays == 0) {
		return sum, fmt.Errorf("ranking set: a test file and test days go together (got file %q, %d days)", opt.TestPath, opt.TestDays)
	}
	for _, p := range []string{path, opt.TestPath} {
		if p != "" && rankingFormat(p) == "" {
			return sum, fmt.Errorf("ranking set %s: unknown format, want a .csv or .parquet file", p)
		}
	}
	parts, err := os.MkdirTemp(filepath.Dir(path), ".ranking-parts-*")
	if err != nil {
		return sum, fmt.Errorf("ranking set: %w", err)
	}
	defer os.RemoveAll(parts)

	partPath := func(d int) string { return filepath.Join(parts, fmt.Sprintf("day-%05d.csv", d)) }
	days := make([]Summary, m.Config.Days)
	err = m.forEachDay(ctx, func(ctx context.Context, d int) error {
		return writeFile(partPath(d), func(w *bufio.Writer) error {
			return m.writeRankingRows(ctx, d, w, opt.Truth, &days[d], opt.Progress)
		})
	})
	if err != nil {
		return sum, fmt.Errorf("ranking set: %w", err)
	}
	split := m.Config.Days - opt.TestDays
	var trainParts, testParts []string
	for d := range days {
		if d < split {
			trainParts = append(trainParts, partPath(d))
			sum.Rows += days[d].Impressions
			sum.Sessions += days[d].Sessions
		} else {
			testParts = append(testParts, partPath(d))
			sum.TestRows += days[d].Impressions
			sum.TestSessions += days[d].Sessions
		}
	}
	if err := assembleRanking(ctx, path, trainParts, opt.Truth); err != nil {
		return sum, err
	}
	if opt.TestPath != "" {
		if err := assembleRanking(ctx, opt.TestPath, testParts, opt.Truth); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

func rankingFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv"
	case ".parquet":
		return "parquet"
	}
	return ""
}

func rankingHeader(truth bool) string {
	names := make([]string, 0, len(rankingColumns)+1)
	for _, c := range rankingColumns {
		names = append(names, c.name)
	}
	if truth {
		names = append(names, TruthColumn)
	}
	return strings.Join(names, ",") + "\n"
}

// writeRankingRows writes day d's rows without a header.
func (m *Market) writeRankingRows(ctx context.Context, d int, w *bufio.Writer, truth bool, sum *Summary, progress Progress) error {
	var row csvRow
	return m.Day(ctx, d, func(s *Session) error {
		u := s.User
		for i := range s.Impressions {
			im := &s.Impressions[i]
			l := im.Listing
			match := int64(0)
			if u.Prefers(l.Neighborhood) {
				match = 1
			}
			row.int(s.ID).int(int64(im.Label())).
				dec(im.Rent).dec(l.AreaM2).int(int64(l.Bedrooms)).dec(im.Rent / l.AreaM2).str(Neighborhoods[l.Neighborhood].Name).
				days(s.At.Sub(l.CreatedAt())).days(s.At.Sub(l.Prices[im.Version].At)).
				dec(u.Budget).int(int64(u.PreferredBedrooms)).
				dec(im.Rent / u.Budget).int(int64(l.Bedrooms - u.PreferredBedrooms)).int(match)
			if truth {
				row.float(im.Utility)
			}
			row.writeTo(w)
		}
		sum.addSession(s)
		if progress != nil {
			progress(int64(len(s.Impressions)))
		}
		return nil
	})
}

// assembleRanking writes the header-less CSV parts, in order, to path.
func assembleRanking(ctx context.Context, path string, parts []string, truth bool) error {
	if rankingFormat(path) == "csv" {
		return writeFile(path, func(w *bufio.Writer) error {
			w.WriteString(rankingHeader(truth))
			for _, p := range parts {
				if err := appendFile(w, p); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return writeParquet(ctx, path, parts, truth)
}

func appendFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// writeParquet converts the CSV parts to one Parquet file with DuckDB, keeping
// the row order (DuckDB preserves insertion order by default).
func writeParquet(ctx context.Context, path string, parts []string, truth bool) (err error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp.parquet")
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("ranking set %s: %w", path, err)
	}
	defer db.Close()
	var cols []string
	for _, c := range rankingColumns {
		cols = append(cols, fmt.Sprintf("'%s': '%s'", c.name, c.typ))
	}
	if truth {
		cols = append(cols, fmt.Sprintf("'%s': 'DOUBLE'", TruthColumn))
	}
	files := make([]string, len(parts))
	for i, p := range parts {
		files[i] = sqlString(p)
	}
	query := fmt.Sprintf(`COPY (SELECT * FROM read_csv([%s], header = false, delim = ',', quote = '', columns = {%s}))
		TO %s (FORMAT parquet, COMPRESSION zstd)`, strings.Join(files, ", "), strings.Join(cols, ", "), sqlString(tmp))
	if _, err := db.ExecContext(ctx, query); err != nil {
		return fmt.Errorf("ranking set %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ranking set %s: %w", path, err)
	}
	return nil
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
