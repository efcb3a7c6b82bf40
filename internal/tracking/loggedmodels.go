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

// LoggedModel statuses (LoggedModelStatus enum names, indexed by number).
var loggedModelStatuses = []string{"LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"}

// LoggedModel is an MLflow 3 logged model: artifacts plus params, tags and
// metrics, produced by a run and registrable as a model version.
type LoggedModel struct {
	Info LoggedModelInfo `json:"info"`
	Data LoggedModelData `json:"data"`
}

// LoggedModelInfo is a logged model's metadata.
type LoggedModelInfo struct {
	ModelID                string         `json:"model_id"`
	ExperimentID           string         `json:"experiment_id"`
	Name                   string         `json:"name"`
	CreationTimestampMs    int64          `json:"creation_timestamp_ms"`
	LastUpdatedTimestampMs int64          `json:"last_updated_timestamp_ms"`
	ArtifactURI            string         `json:"artifact_uri"`
	Status                 string         `json:"status"`
	ModelType              string         `json:"model_type,omitempty"`
	SourceRunID            string         `json:"source_run_id,omitempty"`
	StatusMessage          string         `json:"status_message,omitempty"`
	Tags                   []KV           `json:"tags,omitempty"`
	Registrations          []Registration `json:"registrations,omitempty"`

	lifecycleStage string
}

// Registration names a model version a logged model was registered as.
type Registration struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// LoggedModelData holds a logged model's params and metrics.
type LoggedModelData struct {
	Params  []KV     `json:"params,omitempty"`
	Metrics []Metric `json:"metrics,omitempty"`
}

const loggedModelColumns = `model_id, experiment_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id, status_message`

func scanLoggedModel(sc meta.Scanner) (LoggedModel, error) {
	var m LoggedModel
	var exp int64
	var status int
	err := sc.Scan(&m.Info.ModelID, &exp, &m.Info.Name, &m.Info.ArtifactURI, &m.Info.CreationTimestampMs,
		&m.Info.LastUpdatedTimestampMs, &status, &m.Info.lifecycleStage, &m.Info.ModelType, &m.Info.SourceRunID, &m.Info.StatusMessage)
	m.Info.ExperimentID = wire.Itoa(exp)
	if status >= 0 && status < len(loggedModelStatuses) {
		m.Info.Status = loggedModelStatuses[status]
	}
	return m, err
}

// LoggedModelCreate is a create_logged_model request.
type LoggedModelCreate struct {
	ExperimentID string
	Name         string // default: a random name
	ModelType    string
	SourceRunID  string
	Params       []KV
	Tags         []KV
}

// CreateLoggedModel creates a PENDING logged model whose artifacts live at
// "<experiment artifact location>/models/<model_id>/artifacts".
func (s *Store) CreateLoggedModel(ctx context.Context, c LoggedModelCreate) (*LoggedModel, error) {
	if c.Name != "" {
		if err := validateLoggedModelName(c.Name); err != nil {
			return nil, err
		}
	} else {
		c.Name = randomName()
	}
	if c.ExperimentID == "" {
		return nil, wire.Invalidf("Missing value for required parameter 'experiment_id'.")
	}
	var id string
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		e, expID, err := s.activeExperiment(ctx, tx, c.ExperimentID)
		if err != nil {
			return err
		}
		id = "m-" + NewID()
		now := s.nowMillis()
		loc := strings.TrimRight(e.ArtifactLocation, "/") + "/models/" + id + "/artifacts"
		if _, err := tx.Exec(ctx, `INSERT INTO logged_models (`+loggedModelColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, expID, c.Name, loc, now, now, 1, StageActive, c.ModelType, c.SourceRunID, ""); err != nil {
			return err
		}
		if err := upsertModelKVs(ctx, tx, "logged_model_params", id, c.Params); err != nil {
			return err
		}
		return upsertModelKVs(ctx, tx, "logged_model_tags", id, c.Tags)
	})
	if err != nil {
		return nil, wire.Wrap(err, "create logged model in experiment %s", c.ExperimentID)
	}
	return s.GetLoggedModel(ctx, id, false)
}

func upsertModelKVs(ctx context.Context, q meta.Querier, table, modelID string, kvs []KV) error {
	for _, kv := range dedupKV(kvs) {
		if kv.Key == "" {
			return wire.Invalidf("Missing value for required parameter 'key'.")
		}
		if err := checkLen(kv.Key, "key", MaxEntityKeyLength); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO `+table+` (model_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value`, modelID, kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) loggedModel(ctx context.Context, q meta.Querier, id string, allowDeleted bool) (LoggedModel, error) {
	m, err := scanLoggedModel(q.QueryRow(ctx, `SELECT `+loggedModelColumns+` FROM logged_models WHERE model_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !allowDeleted && m.Info.lifecycleStage == StageDeleted) {
		return m, wire.NotFoundf("Logged model with ID '%s' not found.", id)
	}
	return m, err
}

// GetLoggedModel returns a logged model with its tags, params and metrics.
func (s *Store) GetLoggedModel(ctx context.Context, id string, allowDeleted bool) (*LoggedModel, error) {
	m, err := s.loggedModel(ctx, s.db, id, allowDeleted)
	if err != nil {
		return nil, wire.Wrap(err, "get logged model %s", id)
	}
	models := []LoggedModel{m}
	if err := s.loadLoggedModelData(ctx, models); err != nil {
		return nil, err
	}
	return &models[0], nil
}

func (s *Store) loadLoggedModelData(ctx context.Context, models []LoggedModel) error {
	if len(models) == 0 {
		return nil
	}
	idx := make(map[string]int, len(models))
	ids := make([]string, len(models))
	for i, m := range models {
		idx[m.Info.ModelID] = i
		ids[i] = m.Info.ModelID
	}
	for chunk := range slices.Chunk(ids, 500) {
		in := "(" + search.Placeholders(len(chunk)) + ")"
		args := anys(chunk)
		for _, table := range []string{"logged_model_params", "logged_model_tags"} {
			err := meta.EachRow(ctx, s.db, `SELECT model_id, key, value FROM `+table+` WHERE model_id IN `+in+` ORDER BY model_id, key`, args,
				func(rows *sql.Rows) error {
					var id string
					var kv KV
					if err := rows.Scan(&id, &kv.Key, &kv.Value); err != nil {
						return err
					}
					m := &models[idx[id]]
					if table == "logged_model_params" {
						m.Data.Params = append(m.Data.Params, kv)
					} else {
						m.Info.Tags = append(m.Info.Tags, kv)
					}
					return nil
				})
			if err != nil {
				return fmt.Errorf("load %s: %w", table, err)
			}
		}
		err := meta.EachRow(ctx, s.db, `SELECT model_id, key, value, is_nan, timestamp, step, run_uuid, dataset_name, dataset_digest
			FROM logged_model_metrics WHERE model_id IN `+in+` ORDER BY model_id, key, step, timestamp`, args,
			func(rows *sql.Rows) error {
				var mt Metric
				var v float64
				var nan int
				if err := rows.Scan(&mt.ModelID, &mt.Key, &v, &nan, &mt.Timestamp, &mt.Step, &mt.RunID, &mt.DatasetName, &mt.DatasetDigest); err != nil {
					return err
				}
				mt.Value = restore(v, nan != 0)
				m := &models[idx[mt.ModelID]]
				m.Data.Metrics = append(m.Data.Metrics, mt)
				return nil
			})
		if err != nil {
			return fmt.Errorf("load logged model metrics: %w", err)
		}
	}
	for i := range models {
		for _, t := range models[i].Info.Tags {
			if t.Key == TagModelVersions {
				_ = json.Unmarshal([]byte(t.Value), &models[i].Info.Registrations)
			}
		}
	}
	return nil
}

// ParseLoggedModelStatus resolves a LoggedModelStatus enum (name or number).
func ParseLoggedModelStatus(v wire.Enum) (int, error) {
	name, ok := v.Name(loggedModelStatuses)
	if !ok {
		return 0, wire.Invalidf("Invalid value %q for parameter 'status': expected one of %s", string(v), wire.Prose(strings.Join(loggedModelStatuses[1:], ", ")))
	}
	for i, n := range loggedModelStatuses {
		if n == name {
			return i, nil
		}
	}
	return 0, nil
}

// FinalizeLoggedModel sets a logged model's status (READY or UPLOAD_FAILED).
func (s *Store) FinalizeLoggedModel(ctx context.Context, id string, status int) (*LoggedModel, error) {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.loggedModel(ctx, tx, id, false); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?`, status, s.nowMillis(), id)
		return err
	})
	if err != nil {
		return nil, wire.Wrap(err, "finalize logged model %s", id)
	}
	return s.GetLoggedModel(ctx, id, false)
}

// DeleteLoggedModel marks a logged model deleted.
func (s *Store) DeleteLoggedModel(ctx context.Context, id string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.loggedModel(ctx, tx, id, false); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE logged_models SET lifecycle_stage = ?, last_updated_timestamp_ms = ? WHERE model_id = ?`, StageDeleted, s.nowMillis(), id)
		return err
	})
	return wire.Wrap(err, "delete logged model %s", id)
}

// SetLoggedModelTags sets tags on a logged model (last write wins).
func (s *Store) SetLoggedModelTags(ctx context.Context, id string, tags []KV) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.loggedModel(ctx, tx, id, false); err != nil {
			return err
		}
		return upsertModelKVs(ctx, tx, "logged_model_tags", id, tags)
	})
	return wire.Wrap(err, "set tags on logged model %s", id)
}

// DeleteLoggedModelTag removes a tag from a logged model.
func (s *Store) DeleteLoggedModelTag(ctx context.Context, id, key string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.loggedModel(ctx, tx, id, false); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?`, id, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return wire.NotFoundf("No tag with key '%s' found for model with ID '%s'.", key, id)
		}
		return nil
	})
	return wire.Wrap(err, "delete tag %q of logged model %s", key, id)
}

// LogLoggedModelParams adds params to a logged model.
func (s *Store) LogLoggedModelParams(ctx context.Context, id string, params []KV) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.loggedModel(ctx, tx, id, false); err != nil {
			return err
		}
		return upsertModelKVs(ctx, tx, "logged_model_params", id, params)
	})
	return wire.Wrap(err, "log params to logged model %s", id)
}

// AddModelVersionRegistration records on a logged model that it was registered
// as name/version (the mlflow.modelVersions tag, as MLflow keeps it).
func (s *Store) AddModelVersionRegistration(ctx context.Context, modelID, name, version string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.loggedModel(ctx, tx, modelID, false); err != nil {
			return err
		}
		var regs []Registration
		var cur string
		err := tx.QueryRow(ctx, `SELECT value FROM logged_model_tags WHERE model_id = ? AND key = ?`, modelID, TagModelVersions).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			_ = json.Unmarshal([]byte(cur), &regs)
		}
		for _, r := range regs {
			if r.Name == name && r.Version == version {
				return nil
			}
		}
		regs = append(regs, Registration{Name: name, Version: version})
		b, _ := json.Marshal(regs)
		return upsertModelKVs(ctx, tx, "logged_model_tags", modelID, []KV{{Key: TagModelVersions, Value: string(b)}})
	})
	return wire.Wrap(err, "record registration of logged model %s", modelID)
}

// LoggedModelOrder is one order_by entry of search_logged_models.
type LoggedModelOrder struct {
	FieldName     string
	Ascending     bool
	DatasetName   string
	DatasetDigest string
}

// LoggedModelQuery is a search_logged_models request.
type LoggedModelQuery struct {
	ExperimentIDs []string
	Filter        string
	Datasets      []DatasetRef
	MaxResults    int64 // default 50
	OrderBy       []LoggedModelOrder
	PageToken     string
}

// DatasetRef names a dataset (digest optional) in a logged model search.
type DatasetRef struct {
	Name   string
	Digest string
}

var loggedModelAttr = map[string]string{
	"model_id": "lm.model_id", "name": "lm.name", "model_type": "lm.model_type", "source_run_id": "lm.source_run_id",
	"status": "lm.status", "creation_timestamp": "lm.creation_timestamp_ms", "creation_timestamp_ms": "lm.creation_timestamp_ms",
	"last_updated_timestamp": "lm.last_updated_timestamp_ms", "last_updated_timestamp_ms": "lm.last_updated_timestamp_ms",
	"experiment_id": "lm.experiment_id",
}

// SearchLoggedModels returns a page of the active logged models of experiments.
func (s *Store) SearchLoggedModels(ctx context.Context, q LoggedModelQuery) ([]LoggedModel, string, error) {
	limit, offset, err := search.Page(q.MaxResults, 50, MaxSearchRunsResults, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	if len(q.ExperimentIDs) == 0 {
		return nil, "", wire.Invalidf("Missing value for required parameter 'experiment_ids'.")
	}
	if len(q.ExperimentIDs) > search.MaxListValues || len(q.OrderBy) > maxOrderJoins || len(q.Datasets) > 100 {
		return nil, "", wire.Invalidf("A logged model search may name at most %d experiment_ids, %d order_by fields and 100 datasets.", search.MaxListValues, maxOrderJoins)
	}
	for _, d := range q.Datasets {
		if d.Name == "" {
			return nil, "", wire.Invalidf("`dataset_name` in the `datasets` clause must be specified.")
		}
	}
	clauses, err := search.Parse(search.LoggedModels, q.Filter)
	if err != nil {
		return nil, "", err
	}
	if err := search.CheckRequestClauses(clauses); err != nil {
		return nil, "", err
	}
	expIDs := make([]any, len(q.ExperimentIDs))
	for i, id := range q.ExperimentIDs {
		if expIDs[i], err = parseExperimentID(id); err != nil {
			return nil, "", err
		}
	}
	var w search.Where
	w.Add("lm.experiment_id IN ("+search.Placeholders(len(expIDs))+")", expIDs...)
	w.Add("lm.lifecycle_stage = ?", StageActive)
	dsCond, dsArgs := datasetCondition(q.Datasets)
	hasMetricFilter := false
	for _, c := range clauses {
		switch c.Entity {
		case search.Attribute:
			if c.Key == "status" {
				if c.List != nil {
					for i, v := range c.List {
						if n, err := ParseLoggedModelStatus(wire.Enum(v)); err == nil {
							c.List[i] = wire.Itoa(int64(n))
						}
					}
				} else if n, err := ParseLoggedModelStatus(wire.Enum(c.Str)); err == nil {
					c.Str, c.Num, c.IsNum, c.Int = "", float64(n), true, true
				}
			}
			cond, args := search.Compare(loggedModelAttr[c.Key], c)
			w.Add(cond, args...)
		case search.Metric:
			hasMetricFilter = true
			cond, args := search.Compare("mm.value", c)
			w.Add("EXISTS (SELECT 1 FROM logged_model_metrics mm WHERE mm.model_id = lm.model_id AND mm.key = ? AND "+cond+dsCond+")",
				append(append([]any{c.Key}, args...), dsArgs...)...)
		case search.Param, search.Tag:
			table := "logged_model_params"
			if c.Entity == search.Tag {
				table = "logged_model_tags"
			}
			cond, args := search.Compare("p.value", c)
			w.Add("EXISTS (SELECT 1 FROM "+table+" p WHERE p.model_id = lm.model_id AND p.key = ? AND "+cond+")",
				append([]any{c.Key}, args...)...)
		}
	}
	if len(q.Datasets) > 0 && !hasMetricFilter {
		w.Add("EXISTS (SELECT 1 FROM logged_model_metrics mm WHERE mm.model_id = lm.model_id"+dsCond+")", dsArgs...)
	}
	var joins []string
	var joinArgs []any
	var order []string
	hasCreation, hasID := false, false
	for i, ob := range q.OrderBy {
		dir := " ASC"
		if !ob.Ascending {
			dir = " DESC"
		}
		entity, name, dotted := strings.Cut(ob.FieldName, ".")
		if !dotted {
			col, ok := loggedModelAttr[ob.FieldName]
			if !ok {
				return nil, "", wire.Invalidf("Invalid order by field name: %s", ob.FieldName)
			}
			hasCreation = hasCreation || col == "lm.creation_timestamp_ms"
			hasID = hasID || col == "lm.model_id"
			order = append(order, "CASE WHEN "+col+" IS NULL THEN 1 ELSE 0 END", col+dir)
			continue
		}
		if entity != "metrics" {
			return nil, "", wire.Invalidf("Invalid order by field name: %s. Only metrics are supported.", ob.FieldName)
		}
		alias := fmt.Sprintf("o%d", i)
		cond := ""
		args := []any{name}
		if ob.DatasetName != "" {
			cond += " AND dataset_name = ?"
			args = append(args, ob.DatasetName)
		}
		if ob.DatasetDigest != "" {
			cond += " AND dataset_digest = ?"
			args = append(args, ob.DatasetDigest)
		}
		// The model's latest value of the metric: newest timestamp, then step.
		joins = append(joins, `LEFT JOIN (SELECT model_id, value FROM (
				SELECT model_id, value, ROW_NUMBER() OVER (PARTITION BY model_id ORDER BY timestamp DESC, step DESC, run_uuid) AS rn
				FROM logged_model_metrics WHERE key = ?`+cond+`) x WHERE rn = 1) `+alias+` ON `+alias+`.model_id = lm.model_id`)
		joinArgs = append(joinArgs, args...)
		order = append(order, "CASE WHEN "+alias+".value IS NULL THEN 1 ELSE 0 END", alias+".value"+dir)
	}
	if !hasCreation {
		order = append(order, "lm.creation_timestamp_ms DESC")
	}
	if !hasID {
		order = append(order, "lm.model_id ASC")
	}
	query := `SELECT ` + search.Qualify("lm.", loggedModelColumns) + ` FROM logged_models lm ` + strings.Join(joins, " ") +
		` WHERE ` + w.SQL() + ` ORDER BY ` + joinComma(order) + ` LIMIT ? OFFSET ?`
	models, err := meta.Collect(ctx, s.db, query, append(append(joinArgs, w.Args...), limit+1, offset), scanLoggedModel)
	if err != nil {
		return nil, "", fmt.Errorf("search logged models: %w", err)
	}
	models, next := search.TrimPage(models, limit, offset)
	if err := s.loadLoggedModelData(ctx, models); err != nil {
		return nil, "", err
	}
	return models, next, nil
}

// datasetCondition restricts logged_model_metrics rows (alias mm) to any of refs.
func datasetCondition(refs []DatasetRef) (string, []any) {
	if len(refs) == 0 {
		return "", nil
	}
	var parts []string
	var args []any
	for _, d := range refs {
		if d.Digest != "" {
			parts = append(parts, "(mm.dataset_name = ? AND mm.dataset_digest = ?)")
			args = append(args, d.Name, d.Digest)
		} else {
			parts = append(parts, "mm.dataset_name = ?")
			args = append(args, d.Name)
		}
	}
	return " AND (" + strings.Join(parts, " OR ") + ")", args
}
