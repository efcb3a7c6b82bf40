package demo

import (
	"context"
	"fmt"
)

// rankingColumns are the columns of a ranking set, in file order, with their
// DuckDB types. The feature columns are what a ranker can observe at search time;
// position is deliberately absent (it is the logging ranker's output, and a model
// that learns it would re-learn the old order) and so are the ids.
var rankingColumns = []column{
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

func rankingTable(truth bool) impressionTable {
	cols := rankingColumns
	if truth {
		cols = append(cols[:len(cols):len(cols)], column{TruthColumn, "DOUBLE"})
	}
	return impressionTable{what: "ranking set", columns: cols, row: func(row *csvRow, s *Session, im *Impression) {
		u, l := s.User, im.Listing
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
	}}
}

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
// listing impression), rows of a session consecutive in RowOrder, with the graded label
// (0 impression, 1 click, 2 visit request), the session id as query id and the
// feature columns of rankingColumns. The format follows the extension: .csv or
// .parquet. Days are generated in parallel; the files appear only when complete.
func (m *Market) WriteRanking(ctx context.Context, path string, opt RankingOptions) (RankingSummary, error) {
	if opt.TestDays < 0 || opt.TestDays >= m.Config.Days {
		return RankingSummary{}, fmt.Errorf("ranking set: test days %d: want 0 <= test days < days (%d)", opt.TestDays, m.Config.Days)
	}
	if (opt.TestPath == "") != (opt.TestDays == 0) {
		return RankingSummary{}, fmt.Errorf("ranking set: a test file and test days go together (got file %q, %d days)", opt.TestPath, opt.TestDays)
	}
	split := m.Config.Days - opt.TestDays
	files := []tableFile{{path, 0, split}}
	if opt.TestPath != "" {
		files = append(files, tableFile{opt.TestPath, split, m.Config.Days})
	}
	sums, err := m.writeTable(ctx, rankingTable(opt.Truth), files, opt.Progress)
	if err != nil {
		return RankingSummary{}, err
	}
	sum := RankingSummary{Rows: sums[0].Rows, Sessions: sums[0].Sessions}
	if len(sums) > 1 {
		sum.TestRows, sum.TestSessions = sums[1].Rows, sums[1].Sessions
	}
	return sum, nil
}

// SpineTimeColumn is the time column of a spine written by WriteSpine.
const SpineTimeColumn = "ts"

// spineTable is a point-in-time spine: the keys and time of each impression
// with its label, for `atrium historical` to join features to. A session's
// rows are in RowOrder: the shown order is the position column.
var spineTable = impressionTable{
	what: "spine",
	columns: []column{
		{"session_id", "BIGINT"}, {"listing_id", "BIGINT"}, {"user_id", "BIGINT"},
		{SpineTimeColumn, "TIMESTAMP"}, {"position", "INTEGER"}, {"label", "INTEGER"},
	},
	row: func(row *csvRow, s *Session, im *Impression) {
		row.int(s.ID).int(im.Listing.ID).int(s.User.ID).time(s.At).int(int64(im.Position)).int(int64(im.Label()))
	},
}

// WriteSpine writes a spine for a point-in-time join: one row per impression of
// the sessions of days [from, to), a session's rows in RowOrder, with columns
// session_id, listing_id, user_id, ts (the search time), position and label
// (0, 1, 2). CSV or Parquet by extension.
func (m *Market) WriteSpine(ctx context.Context, path string, from, to int) (FileSummary, error) {
	sums, err := m.writeTable(ctx, spineTable, []tableFile{{path, from, to}}, nil)
	if err != nil {
		return FileSummary{}, err
	}
	return sums[0], nil
}
