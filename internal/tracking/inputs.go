package tracking

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/atrium-ml/atrium/internal/platform/meta"
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
	return wrap(err, "log inputs to run %s", runID)
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
	return wrap(err, "log outputs of run %s", runID)
}

// loadRunInputs fills dataset inputs, model inputs and model outputs of the runs
// named by the IN list in (with args).
func (s *Store) loadRunInputs(ctx context.Context, runs []Run, idx map[string]int, in string, args []any) error {
	type key struct{ run, ds string }
	pos := map[key]int{}
	err := s.eachRow(ctx, `SELECT i.run_uuid, d.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
		FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
		WHERE i.run_uuid IN `+in+` ORDER BY i.run_uuid, d.name, d.digest`, args, func(sc func(...any) error) error {
		var run, ds string
		var d Dataset
		var schema, profile sql.NullString
		if err := sc(&run, &ds, &d.Name, &d.Digest, &d.SourceType, &d.Source, &schema, &profile); err != nil {
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
		err = s.eachRow(ctx, `SELECT run_uuid, dataset_uuid, key, value FROM run_input_tags WHERE run_uuid IN `+in+` ORDER BY run_uuid, key`,
			args, func(sc func(...any) error) error {
				var run, ds string
				var kv KV
				if err := sc(&run, &ds, &kv.Key, &kv.Value); err != nil {
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
	err = s.eachRow(ctx, `SELECT run_uuid, model_id FROM run_model_inputs WHERE run_uuid IN `+in+` ORDER BY run_uuid, model_id`, args,
		func(sc func(...any) error) error {
			var run string
			var m ModelInput
			if err := sc(&run, &m.ModelID); err != nil {
				return err
			}
			r := &runs[idx[run]]
			r.Inputs.ModelInputs = append(r.Inputs.ModelInputs, m)
			return nil
		})
	if err != nil {
		return fmt.Errorf("load run model inputs: %w", err)
	}
	err = s.eachRow(ctx, `SELECT run_uuid, model_id, step FROM run_model_outputs WHERE run_uuid IN `+in+` ORDER BY run_uuid, step, model_id`, args,
		func(sc func(...any) error) error {
			var run string
			var m ModelOutput
			if err := sc(&run, &m.ModelID, &m.Step); err != nil {
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
