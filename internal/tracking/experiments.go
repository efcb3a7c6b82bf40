package tracking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

const experimentColumns = `experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time`

func scanExperiment(sc meta.Scanner) (Experiment, error) {
	var e Experiment
	var id int64
	err := sc.Scan(&id, &e.Name, &e.ArtifactLocation, &e.LifecycleStage, &e.CreationTime, &e.LastUpdateTime)
	e.ExperimentID = wire.Itoa(id)
	return e, err
}

// CreateExperiment creates an experiment and returns its id. An empty
// artifactLocation defaults to "<artifact root>/<id>". The location must have
// passed the caller's URI policy (the API checks it).
func (s *Store) CreateExperiment(ctx context.Context, name, artifactLocation string, tags []KV) (string, error) {
	if err := validateExperimentName(name); err != nil {
		return "", err
	}
	if err := checkLen(artifactLocation, "artifact_location", MaxArtifactLocationLen); err != nil {
		return "", err
	}
	for _, t := range tags {
		if err := validateExperimentTag(t); err != nil {
			return "", err
		}
	}
	var id int64
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		now := s.nowMillis()
		err := tx.QueryRow(ctx, `INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
			VALUES (?, ?, ?, ?, ?) RETURNING experiment_id`, name, artifactLocation, StageActive, now, now).Scan(&id)
		if err != nil {
			if meta.IsConflict(err) {
				return wire.Existsf("Experiment(name=%s) already exists.", name)
			}
			return err
		}
		if artifactLocation == "" {
			if _, err := tx.Exec(ctx, `UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?`,
				fmt.Sprintf("%s/%d", s.root, id), id); err != nil {
				return err
			}
		}
		for _, t := range dedupKV(tags) {
			if _, err := tx.Exec(ctx, `INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)`, id, t.Key, t.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", wire.Wrap(err, "create experiment %q", name)
	}
	return wire.Itoa(id), nil
}

// dedupKV keeps the last value of each key, in first-seen key order.
func dedupKV(kvs []KV) []KV {
	idx := make(map[string]int, len(kvs))
	out := make([]KV, 0, len(kvs))
	for _, kv := range kvs {
		if i, ok := idx[kv.Key]; ok {
			out[i].Value = kv.Value
			continue
		}
		idx[kv.Key] = len(out)
		out = append(out, kv)
	}
	return out
}

func (s *Store) experiment(ctx context.Context, q meta.Querier, id string) (Experiment, error) {
	n, err := parseExperimentID(id)
	if err != nil {
		return Experiment{}, err
	}
	e, err := scanExperiment(q.QueryRow(ctx, `SELECT `+experimentColumns+` FROM experiments WHERE experiment_id = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return e, wire.NotFoundf("No Experiment with id=%s exists", id)
	}
	return e, err
}

// activeExperiment returns an experiment and its numeric id, failing unless it
// exists and is active.
func (s *Store) activeExperiment(ctx context.Context, q meta.Querier, id string) (Experiment, int64, error) {
	e, err := s.experiment(ctx, q, id)
	if err != nil {
		return e, 0, err
	}
	if e.LifecycleStage != StageActive {
		return e, 0, wire.Invalidf("The experiment %s must be in the 'active' state. Current state is %s.", e.ExperimentID, e.LifecycleStage)
	}
	n, err := parseExperimentID(e.ExperimentID)
	return e, n, err
}

// GetExperiment returns an experiment with its tags.
func (s *Store) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	e, err := s.experiment(ctx, s.db, id)
	if err != nil {
		return nil, wire.Wrap(err, "get experiment %s", id)
	}
	exps := []Experiment{e}
	if err := s.loadExperimentTags(ctx, exps); err != nil {
		return nil, err
	}
	return &exps[0], nil
}

// GetExperimentByName returns the experiment with that name (active or deleted).
func (s *Store) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	e, err := scanExperiment(s.db.QueryRow(ctx, `SELECT `+experimentColumns+` FROM experiments WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wire.NotFoundf("Could not find experiment with name '%s'", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get experiment by name %q: %w", name, err)
	}
	exps := []Experiment{e}
	if err := s.loadExperimentTags(ctx, exps); err != nil {
		return nil, err
	}
	return &exps[0], nil
}

func (s *Store) loadExperimentTags(ctx context.Context, exps []Experiment) error {
	if len(exps) == 0 {
		return nil
	}
	idx := make(map[string]int, len(exps))
	ids := make([]string, len(exps))
	for i, e := range exps {
		idx[e.ExperimentID] = i
		ids[i] = e.ExperimentID
	}
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i], _ = parseExperimentID(id)
		}
		err := meta.EachRow(ctx, s.db, `SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN (`+search.Placeholders(len(chunk))+`) ORDER BY experiment_id, key`, args, func(rows *sql.Rows) error {
			var id int64
			var kv KV
			if err := rows.Scan(&id, &kv.Key, &kv.Value); err != nil {
				return err
			}
			i := idx[wire.Itoa(id)]
			exps[i].Tags = append(exps[i].Tags, kv)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load experiment tags: %w", err)
		}
	}
	return nil
}

// setExperimentStage moves an experiment (and, as MLflow does, its runs) between
// lifecycle stages. from is the stage the experiment must be in.
func (s *Store) setExperimentStage(ctx context.Context, id, from, to string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		e, err := s.experiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if e.LifecycleStage != from {
			if to == StageDeleted {
				return wire.Invalidf("The experiment %s must be in the 'active' state. Current state is %s.", id, e.LifecycleStage)
			}
			return wire.Invalidf("Cannot restore an active experiment (id=%s).", id)
		}
		n, _ := parseExperimentID(id)
		now := s.nowMillis()
		if _, err := tx.Exec(ctx, `UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?`, to, now, n); err != nil {
			return err
		}
		var deletedTime any
		if to == StageDeleted {
			deletedTime = now
		}
		_, err = tx.Exec(ctx, `UPDATE runs SET lifecycle_stage = ?, deleted_time = ?, revision = revision + 1
			WHERE experiment_id = ? AND lifecycle_stage = ?`, to, deletedTime, n, from)
		return err
	})
	return wire.Wrap(err, "set experiment %s %s", id, to)
}

// DeleteExperiment marks an experiment and its runs deleted.
func (s *Store) DeleteExperiment(ctx context.Context, id string) error {
	if id == DefaultExpID {
		return wire.Invalidf("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
	}
	return s.setExperimentStage(ctx, id, StageActive, StageDeleted)
}

// RestoreExperiment restores a deleted experiment and its runs.
func (s *Store) RestoreExperiment(ctx context.Context, id string) error {
	return s.setExperimentStage(ctx, id, StageDeleted, StageActive)
}

// RenameExperiment renames an active experiment.
func (s *Store) RenameExperiment(ctx context.Context, id, newName string) error {
	if err := validateExperimentName(newName); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		e, err := s.experiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if e.LifecycleStage != StageActive {
			// MLflow says INVALID_STATE (a 500, which clients retry); renaming a
			// deleted experiment is the caller's mistake, so it is a 400 here.
			return wire.Invalidf("Cannot rename a non-active experiment.")
		}
		n, _ := parseExperimentID(id)
		_, err = tx.Exec(ctx, `UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?`, newName, s.nowMillis(), n)
		if meta.IsConflict(err) {
			return wire.Existsf("Experiment(name=%s) already exists.", newName)
		}
		return err
	})
	return wire.Wrap(err, "rename experiment %s", id)
}

// SetExperimentTag sets (or overwrites) a tag on an active experiment.
func (s *Store) SetExperimentTag(ctx context.Context, id string, tag KV) error {
	if err := validateExperimentTag(tag); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		_, n, err := s.activeExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value`, n, tag.Key, tag.Value)
		return err
	})
	return wire.Wrap(err, "set experiment %s tag %q", id, tag.Key)
}

// DeleteExperimentTag removes a tag from an active experiment.
func (s *Store) DeleteExperimentTag(ctx context.Context, id, key string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		_, n, err := s.activeExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?`, n, key)
		if err != nil {
			return err
		}
		if c, _ := res.RowsAffected(); c == 0 {
			return wire.NotFoundf("No tag with name: %s in experiment with id %s", key, id)
		}
		return nil
	})
	return wire.Wrap(err, "delete experiment %s tag %q", id, key)
}

// ExperimentQuery is a search_experiments request.
type ExperimentQuery struct {
	ViewType   wire.Enum
	MaxResults int64
	Filter     string
	OrderBy    []string
	PageToken  string
	// Visible, when set, keeps only the experiments (by id) it accepts:
	// those the caller may read (server.VisibleFrom). Pages stay full.
	Visible func(id string) bool
}

// SearchExperiments returns a page of experiments and the next page token ("" at the end).
func (s *Store) SearchExperiments(ctx context.Context, q ExperimentQuery) ([]Experiment, string, error) {
	limit, offset, err := search.Page(q.MaxResults, 1000, MaxExperimentsPerPage, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	stages, err := viewStages(q.ViewType)
	if err != nil {
		return nil, "", err
	}
	clauses, err := search.Parse(search.Experiments, q.Filter)
	if err != nil {
		return nil, "", err
	}
	if err := search.CheckRequestClauses(clauses); err != nil {
		return nil, "", err
	}
	var w search.Where
	w.Add("e.lifecycle_stage IN ("+search.Placeholders(len(stages))+")", stages...)
	for _, c := range clauses {
		switch {
		case c.Entity == search.Tag && c.Op == "IS NULL":
			w.Add("NOT EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ?)", c.Key)
		case c.Entity == search.Tag && c.Op == "IS NOT NULL":
			w.Add("EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ?)", c.Key)
		case c.Entity == search.Tag:
			cond, args := search.Compare("t.value", c)
			w.Add("EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ? AND "+cond+")", append([]any{c.Key}, args...)...)
		case c.Key == "experiment_id":
			if c.Op != "=" && c.Op != "!=" && c.Op != "IN" && c.Op != "NOT IN" {
				return nil, "", wire.Invalidf("Invalid comparator for experiment_id: %s", c.Op)
			}
			vals := c.List
			if vals == nil {
				vals = []string{c.Str}
			}
			ids := make([]any, len(vals))
			for i, v := range vals {
				if ids[i], err = parseExperimentID(v); err != nil {
					return nil, "", err
				}
			}
			op := c.Op
			if op == "=" {
				op = "IN"
			} else if op == "!=" {
				op = "NOT IN"
			}
			w.Add("e.experiment_id "+op+" ("+search.Placeholders(len(ids))+")", ids...)
		default: // name, creation_time, last_update_time
			cond, args := search.Compare("e."+c.Key, c)
			w.Add(cond, args...)
		}
	}
	order := []string{}
	orderBy := q.OrderBy
	if len(orderBy) == 0 {
		orderBy = []string{"creation_time DESC", "experiment_id ASC"}
	}
	seen := map[string]bool{}
	for _, o := range orderBy {
		ob, err := search.ParseOrderBy(search.Experiments, o)
		if err != nil {
			return nil, "", err
		}
		if seen[ob.Key] {
			return nil, "", wire.Invalidf("`order_by` contains duplicate fields: %v", q.OrderBy)
		}
		seen[ob.Key] = true
		dir := " ASC"
		if !ob.Asc {
			dir = " DESC"
		}
		order = append(order, "e."+ob.Key+dir)
	}
	if !seen["experiment_id"] {
		order = append(order, "e.experiment_id ASC")
	}
	query := `SELECT ` + search.Qualify("e.", experimentColumns) + ` FROM experiments e WHERE ` + w.SQL() +
		` ORDER BY ` + joinComma(order) + ` LIMIT ? OFFSET ?`
	var keep func(Experiment) bool
	if q.Visible != nil {
		keep = func(e Experiment) bool { return q.Visible(e.ExperimentID) }
	}
	exps, next, err := search.KeptPage(func(n int64, off int) ([]Experiment, error) {
		return meta.Collect(ctx, s.db, query, append(slices.Clip(w.Args), n, off), scanExperiment)
	}, keep, limit, offset)
	if err != nil {
		return nil, "", fmt.Errorf("search experiments: %w", err)
	}
	if err := s.loadExperimentTags(ctx, exps); err != nil {
		return nil, "", err
	}
	return exps, next, nil
}
