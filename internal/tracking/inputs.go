package tracking

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// LogInputs records datasets (and MLflow 3 logged models) a run used. A dataset
// is stored once per experiment by (name, digest); logging it again adds no row
// and updates its input tags.
func (s *Store) LogInputs(ctx context.Context, runID string, datasets []DatasetInput, models []ModelInput) error {
	if err := ValidateRunID(runID, "run_id"); err != nil {
		return err
	}
	for _, di := range datasets {
		if err := validateDataset(di.Dataset); err != nil {
			return err
		}
		for _, t := range di.Tags {
			if err := validateInputTag(t); err != nil {
				return err
			}
		}
	}
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, expID int64) error {
		for _, di := range datasets {
			d := di.Dataset
			if _, err := tx.Exec(ctx, `INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (experiment_id, name, digest) DO NOTHING`,
				NewID(), expID, d.Name, d.Digest, d.SourceType, d.Source, nullIfEmpty(d.Schema), nullIfEmpty(d.Profile)); err != nil {
				return err
			}
			var dsID string
			if err := tx.QueryRow(ctx, `SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?`,
				expID, d.Name, d.Digest).Scan(&dsID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO run_inputs (run_uuid, dataset_uuid) VALUES (?, ?) ON CONFLICT DO NOTHING`, runID, dsID); err != nil {
				return err
			}
			for _, t := range dedupKV(di.Tags) {
				if _, err := tx.Exec(ctx, `INSERT INTO run_input_tags (run_uuid, dataset_uuid, key, value) VALUES (?, ?, ?, ?)
					ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value`, runID, dsID, t.Key, t.Value); err != nil {
					return err
				}
			}
		}
		for _, m := range models {
			if m.ModelID == "" {
				return wire.Invalidf("Missing value for required parameter 'models.model_id'.")
			}
			if _, err := tx.Exec(ctx, `INSERT INTO run_model_inputs (run_uuid, model_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, runID, m.ModelID); err != nil {
				return err
			}
		}
		return nil
	})
	return wire.Wrap(err, "log inputs to run %s", runID)
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// LogOutputs records logged models a run produced (MLflow 3 runs/outputs).
func (s *Store) LogOutputs(ctx context.Context, runID string, models []ModelOutput) error {
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		for _, m := range models {
			if m.ModelID == "" {
				return wire.Invalidf("Missing value for required parameter 'models.model_id'.")
			}
			if _, err := tx.Exec(ctx, `INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				runID, m.ModelID, m.Step); err != nil {
				return err
			}
		}
		return nil
	})
	return wire.Wrap(err, "log outputs of run %s", runID)
}

// runDataset names a dataset input of a run.
type runDataset struct{ run, dataset string }

// loadDatasetInputs fills the dataset inputs (with their input tags) of runs,
// given the (run, dataset) pairs loadRunData found.
func (s *Store) loadDatasetInputs(ctx context.Context, runs []Run, idx map[string]int, pairs []runDataset) error {
	if len(pairs) == 0 {
		return nil
	}
	datasets := map[string]Dataset{}
	var dsIDs, runIDs []string
	seenRun := map[string]bool{}
	for _, p := range pairs {
		if _, ok := datasets[p.dataset]; !ok {
			datasets[p.dataset] = Dataset{}
			dsIDs = append(dsIDs, p.dataset)
		}
		if !seenRun[p.run] {
			seenRun[p.run] = true
			runIDs = append(runIDs, p.run)
		}
	}
	for chunk := range slices.Chunk(dsIDs, 1000) {
		err := meta.EachRow(ctx, s.db, `SELECT dataset_uuid, name, digest, source_type, source, schema, profile FROM datasets WHERE dataset_uuid IN (`+
			search.Placeholders(len(chunk))+`)`, anys(chunk), func(rows *sql.Rows) error {
			var id string
			var d Dataset
			var schema, profile sql.NullString
			if err := rows.Scan(&id, &d.Name, &d.Digest, &d.SourceType, &d.Source, &schema, &profile); err != nil {
				return err
			}
			d.Schema, d.Profile = schema.String, profile.String
			datasets[id] = d
			return nil
		})
		if err != nil {
			return fmt.Errorf("load datasets: %w", err)
		}
	}
	tags := map[runDataset][]KV{}
	for chunk := range slices.Chunk(runIDs, 1000) {
		err := meta.EachRow(ctx, s.db, `SELECT run_uuid, dataset_uuid, key, value FROM run_input_tags WHERE run_uuid IN (`+
			search.Placeholders(len(chunk))+`) ORDER BY run_uuid, dataset_uuid, key`, anys(chunk), func(rows *sql.Rows) error {
			var p runDataset
			var kv KV
			if err := rows.Scan(&p.run, &p.dataset, &kv.Key, &kv.Value); err != nil {
				return err
			}
			tags[p] = append(tags[p], kv)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load run input tags: %w", err)
		}
	}
	for _, p := range pairs {
		r := &runs[idx[p.run]]
		r.Inputs.DatasetInputs = append(r.Inputs.DatasetInputs, DatasetInput{Tags: tags[p], Dataset: datasets[p.dataset]})
	}
	for i := range runs {
		slices.SortFunc(runs[i].Inputs.DatasetInputs, func(a, b DatasetInput) int {
			if c := strings.Compare(a.Dataset.Name, b.Dataset.Name); c != 0 {
				return c
			}
			return strings.Compare(a.Dataset.Digest, b.Dataset.Digest)
		})
	}
	return nil
}

// DatasetSummary is one (experiment, dataset, context) the UI lists.
type DatasetSummary struct {
	ExperimentID string `json:"experiment_id"`
	Name         string `json:"name"`
	Digest       string `json:"digest"`
	Context      string `json:"context,omitempty"`
}

// SearchDatasets lists the distinct datasets used by runs of the experiments,
// with their mlflow.data.context input tag.
func (s *Store) SearchDatasets(ctx context.Context, experimentIDs []string) ([]DatasetSummary, error) {
	ids := make([]any, len(experimentIDs))
	for i, id := range experimentIDs {
		n, err := parseExperimentID(id)
		if err != nil {
			return nil, err
		}
		ids[i] = n
	}
	var out []DatasetSummary
	err := meta.EachRow(ctx, s.db, `SELECT DISTINCT d.experiment_id, d.name, d.digest, COALESCE(t.value, '')
		FROM datasets d
		JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid
		LEFT JOIN run_input_tags t ON t.run_uuid = i.run_uuid AND t.dataset_uuid = i.dataset_uuid AND t.key = ?
		WHERE d.experiment_id IN (`+search.Placeholders(len(ids))+`)
		ORDER BY d.experiment_id, d.name, d.digest LIMIT 1000`, append([]any{TagDatasetCtx}, ids...), func(rows *sql.Rows) error {
		var ds DatasetSummary
		var exp int64
		if err := rows.Scan(&exp, &ds.Name, &ds.Digest, &ds.Context); err != nil {
			return err
		}
		ds.ExperimentID = wire.Itoa(exp)
		out = append(out, ds)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search datasets: %w", err)
	}
	return out, nil
}

// TagLoggedModels is the run tag holding the MLflow 2 log_model history.
const TagLoggedModels = "mlflow.log-model.history"

// RecordLoggedModel appends an MLflow 2 model description (log_model's
// model_json) to the run's mlflow.log-model.history tag.
func (s *Store) RecordLoggedModel(ctx context.Context, runID, modelJSON string) error {
	var model map[string]any
	if err := json.Unmarshal([]byte(modelJSON), &model); err != nil || model == nil {
		return wire.Invalidf("Malformed model info. \n %s \n is not a valid JSON.", modelJSON)
	}
	var missing []string
	for _, k := range []string{"artifact_path", "flavors", "run_id", "utc_time_created"} {
		if _, ok := model[k]; !ok {
			missing = append(missing, "'"+k+"'")
		}
	}
	if len(missing) > 0 {
		return wire.Invalidf("Model json is missing mandatory fields: {%s}", strings.Join(missing, ", "))
	}
	err := s.inRunTx(ctx, runID, func(tx *meta.Tx, _ int64) error {
		var history []any
		var cur string
		err := tx.QueryRow(ctx, `SELECT value FROM tags WHERE run_uuid = ? AND key = ?`, runID, TagLoggedModels).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			_ = json.Unmarshal([]byte(cur), &history)
		}
		b, err := json.Marshal(append(history, model))
		if err != nil {
			return err
		}
		return upsertKVs(ctx, tx, "tags", runID, []KV{{Key: TagLoggedModels, Value: string(b)}})
	})
	return wire.Wrap(err, "record logged model of run %s", runID)
}
