package tracking

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		expID, err := activeRun(ctx, tx, runID)
		if err != nil {
			return err
		}
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
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := activeRun(ctx, tx, runID); err != nil {
			return err
		}
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

// loadRunInputs fills dataset inputs, model inputs and model outputs of the runs
// named by the IN list in (with args).
func (s *Store) loadRunInputs(ctx context.Context, runs []Run, idx map[string]int, in string, args []any) error {
	type key struct{ run, ds string }
	pos := map[key]int{}
	err := meta.EachRow(ctx, s.db, `SELECT i.run_uuid, d.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
		FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
		WHERE i.run_uuid IN `+in+` ORDER BY i.run_uuid, d.name, d.digest`, args, func(rows *sql.Rows) error {
		var run, ds string
		var d Dataset
		var schema, profile sql.NullString
		if err := rows.Scan(&run, &ds, &d.Name, &d.Digest, &d.SourceType, &d.Source, &schema, &profile); err != nil {
			return err
		}
		d.Schema, d.Profile = schema.String, profile.String
		r := &runs[idx[run]]
		pos[key{run, ds}] = len(r.Inputs.DatasetInputs)
		r.Inputs.DatasetInputs = append(r.Inputs.DatasetInputs, DatasetInput{Dataset: d})
		return nil
	})
	if err != nil {
		return fmt.Errorf("load run dataset inputs: %w", err)
	}
	if len(pos) > 0 {
		err = meta.EachRow(ctx, s.db, `SELECT run_uuid, dataset_uuid, key, value FROM run_input_tags WHERE run_uuid IN `+in+` ORDER BY run_uuid, key`,
			args, func(rows *sql.Rows) error {
				var run, ds string
				var kv KV
				if err := rows.Scan(&run, &ds, &kv.Key, &kv.Value); err != nil {
					return err
				}
				if p, ok := pos[key{run, ds}]; ok {
					di := &runs[idx[run]].Inputs.DatasetInputs[p]
					di.Tags = append(di.Tags, kv)
				}
				return nil
			})
		if err != nil {
			return fmt.Errorf("load run input tags: %w", err)
		}
	}
	err = meta.EachRow(ctx, s.db, `SELECT run_uuid, model_id FROM run_model_inputs WHERE run_uuid IN `+in+` ORDER BY run_uuid, model_id`, args,
		func(rows *sql.Rows) error {
			var run string
			var m ModelInput
			if err := rows.Scan(&run, &m.ModelID); err != nil {
				return err
			}
			r := &runs[idx[run]]
			r.Inputs.ModelInputs = append(r.Inputs.ModelInputs, m)
			return nil
		})
	if err != nil {
		return fmt.Errorf("load run model inputs: %w", err)
	}
	err = meta.EachRow(ctx, s.db, `SELECT run_uuid, model_id, step FROM run_model_outputs WHERE run_uuid IN `+in+` ORDER BY run_uuid, model_id, step`, args,
		func(rows *sql.Rows) error {
			var run string
			var m ModelOutput
			if err := rows.Scan(&run, &m.ModelID, &m.Step); err != nil {
				return err
			}
			r := &runs[idx[run]]
			r.Outputs.ModelOutputs = append(r.Outputs.ModelOutputs, m)
			return nil
		})
	if err != nil {
		return fmt.Errorf("load run model outputs: %w", err)
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
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := activeRun(ctx, tx, runID); err != nil {
			return err
		}
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
