// Package profiledb keeps the profiles of published feature-set partitions
// in the metadata database (component "profiles"): one row per set,
// partition date and run, the profile as JSON. Saving a partition's profile
// removes those of earlier runs of the same partition, whose data the run
// replaced, so a set holds one profile per live partition.
package profiledb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/atrium-ml/atrium/internal/data/profile"
	"github.com/atrium-ml/atrium/internal/platform/meta"
)

// Schema is the profiles' table.
var Schema = meta.Schema{Component: "profiles", Migrations: []meta.Migration{
	{Version: 1, Name: "create feature_profiles", Statements: []string{
		`CREATE TABLE feature_profiles (
				set_name TEXT NOT NULL,
				partition_date TEXT NOT NULL,
				run_id TEXT NOT NULL,
				created_at BIGINT NOT NULL,
				rows_count BIGINT NOT NULL,
				profile TEXT NOT NULL,
				PRIMARY KEY (set_name, partition_date, run_id)
			)`,
	}},
}}

// Entry is a stored profile.
type Entry struct {
	Set   string
	Date  string // YYYY-MM-DD
	RunID string
	// CreatedAt is when the run saved it (millisecond precision).
	CreatedAt time.Time
	Profile   *profile.Profile
}

// Save stores the profiles of a run's partitions (by date), replacing the
// profiles earlier runs stored for the same partitions, in one transaction.
func Save(ctx context.Context, db *meta.DB, set, runID string, profiles map[string]*profile.Profile, at time.Time) error {
	dates := make([]string, 0, len(profiles))
	for d := range profiles {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	docs := make([]string, len(dates))
	for i, d := range dates {
		var buf bytes.Buffer
		if err := profiles[d].Encode(&buf); err != nil {
			return fmt.Errorf("save profile of %s %s: %w", set, d, err)
		}
		docs[i] = buf.String()
	}
	err := db.InTx(ctx, func(tx *meta.Tx) error {
		for i, d := range dates {
			if _, err := tx.Exec(ctx, `DELETE FROM feature_profiles WHERE set_name = ? AND partition_date = ? AND run_id <> ?`, set, d, runID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO feature_profiles (set_name, partition_date, run_id, created_at, rows_count, profile)
				VALUES (?, ?, ?, ?, ?, ?)`, set, d, runID, at.UnixMilli(), profiles[d].Rows, docs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save profiles of %s run %s: %w", set, runID, err)
	}
	return nil
}

// ErrNone: no profile in the range asked for.
var ErrNone = errors.New("no profiles")

// List returns the profile of each partition of set dated from..to (YYYY-MM-DD,
// both included), oldest first: the newest run's when several runs saved one.
// A range without any profile is an error wrapping ErrNone, naming the dates
// that do have profiles, if any.
func List(ctx context.Context, db *meta.DB, set, from, to string) ([]Entry, error) {
	rows, err := db.Query(ctx, `SELECT p.partition_date, p.run_id, p.created_at, p.profile FROM feature_profiles p
		WHERE p.set_name = ? AND p.partition_date >= ? AND p.partition_date <= ?
		AND NOT EXISTS (SELECT 1 FROM feature_profiles q WHERE q.set_name = p.set_name AND q.partition_date = p.partition_date
			AND (q.created_at > p.created_at OR (q.created_at = p.created_at AND q.run_id > p.run_id)))
		ORDER BY p.partition_date`, set, from, to)
	if err != nil {
		return nil, fmt.Errorf("list profiles of %s: %w", set, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e := Entry{Set: set}
		var created int64
		var doc string
		if err := rows.Scan(&e.Date, &e.RunID, &created, &doc); err != nil {
			return nil, fmt.Errorf("list profiles of %s: %w", set, err)
		}
		e.CreatedAt = time.UnixMilli(created).UTC()
		if e.Profile, err = profile.Decode(bytes.NewReader([]byte(doc))); err != nil {
			return nil, fmt.Errorf("profile of %s %s (run %s): %w", set, e.Date, e.RunID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list profiles of %s: %w", set, err)
	}
	if len(out) == 0 {
		var first, last *string
		if err := db.QueryRow(ctx, `SELECT MIN(partition_date), MAX(partition_date) FROM feature_profiles WHERE set_name = ?`, set).Scan(&first, &last); err != nil {
			return nil, fmt.Errorf("list profiles of %s: %w", set, err)
		}
		if first == nil {
			return nil, fmt.Errorf("%w for feature set %s: no run has published it since profiling began (atrium run %s)", ErrNone, set, set)
		}
		return nil, fmt.Errorf("%w for feature set %s from %s to %s: its profiles cover %s to %s", ErrNone, set, from, to, *first, *last)
	}
	return out, nil
}
