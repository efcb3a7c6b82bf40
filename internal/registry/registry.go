// Package registry is Atrium's model registry, wire-compatible with MLflow's:
// registered models, their numbered versions with lineage (source, run id, run
// link, logged model id), tags, aliases (models:/name@alias), and the deprecated
// stages (None, Staging, Production, Archived) kept for older clients.
//
// It lives in the same metadata database as tracking (internal/platform/meta)
// and checks lineage against the tracking store: a version's source must be a
// models:/, runs:/ or mlflow-artifacts:/ URI that belongs to the run or logged
// model it names, never a local path or another host.
package registry

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Schema is the model registry's tables; they sit beside tracking.Schema's,
// which the registry reads too (open the database with both).
//
// Versions are never renumbered: a deleted version keeps its row
// with the internal stage Deleted_Internal (hidden everywhere), so the next
// version number is always max+1, as in MLflow. Renames update every table in
// one transaction.
var Schema = meta.Schema{Component: "registry", Migrations: []meta.Migration{{
	Version: 1,
	Name:    "registered models, versions, tags, aliases",
	Statements: []string{
		`CREATE TABLE registered_models (
				name TEXT PRIMARY KEY,
				creation_timestamp BIGINT NOT NULL,
				last_updated_timestamp BIGINT NOT NULL,
				description TEXT NOT NULL,
				user_id TEXT NOT NULL)`,
		`CREATE TABLE registered_model_tags (
				name TEXT NOT NULL,
				key TEXT NOT NULL,
				value TEXT NOT NULL,
				PRIMARY KEY (name, key))`,
		`CREATE TABLE model_versions (
				name TEXT NOT NULL,
				version BIGINT NOT NULL,
				creation_timestamp BIGINT NOT NULL,
				last_updated_timestamp BIGINT NOT NULL,
				description TEXT NOT NULL,
				user_id TEXT NOT NULL,
				current_stage TEXT NOT NULL,
				source TEXT NOT NULL,
				storage_location TEXT NOT NULL,
				run_id TEXT NOT NULL,
				run_link TEXT NOT NULL,
				status TEXT NOT NULL,
				status_message TEXT NOT NULL,
				model_id TEXT NOT NULL,
				PRIMARY KEY (name, version))`,
		`CREATE INDEX model_versions_run ON model_versions (run_id)`,
		`CREATE TABLE model_version_tags (
				name TEXT NOT NULL,
				version BIGINT NOT NULL,
				key TEXT NOT NULL,
				value TEXT NOT NULL,
				PRIMARY KEY (name, version, key))`,
		`CREATE TABLE registered_model_aliases (
				name TEXT NOT NULL,
				alias TEXT NOT NULL,
				version BIGINT NOT NULL,
				PRIMARY KEY (name, alias))`,
	},
},
}}

// Stages of model versions. deletedStage marks deleted versions internally.
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"
	deletedStage    = "Deleted_Internal"
)

var allStages = []string{StageNone, StageStaging, StageProduction, StageArchived}

// Limits of MLflow's registry (mlflow/utils/validation.py and the SQL store).
const (
	MaxNameLength             = 256 // MLflow's registered model name column
	MaxTagKeyLength           = 250
	MaxTagValueLength         = 100_000
	MaxAliasLength            = 255
	MaxSearchModels           = 1000
	MaxSearchVersions         = 200_000
	DefaultSearchModels       = 100
	DefaultSearchVersions     = 200_000
	promptTag                 = "mlflow.prompt.is_prompt"
	modelVersionSourceMessage = "Invalid model version source: '%s'. "
)

// RegisteredModel is a named model with numbered versions.
type RegisteredModel struct {
	Name                 string         `json:"name"`
	CreationTimestamp    int64          `json:"creation_timestamp"`
	LastUpdatedTimestamp int64          `json:"last_updated_timestamp"`
	UserID               string         `json:"user_id,omitempty"`
	Description          string         `json:"description,omitempty"`
	LatestVersions       []ModelVersion `json:"latest_versions,omitempty"`
	Tags                 []tracking.KV  `json:"tags,omitempty"`
	Aliases              []Alias        `json:"aliases,omitempty"`
}

// Alias points a name at one version of a registered model.
type Alias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// ModelVersion is one version of a registered model and its lineage.
type ModelVersion struct {
	Name                 string        `json:"name"`
	Version              string        `json:"version"`
	CreationTimestamp    int64         `json:"creation_timestamp"`
	LastUpdatedTimestamp int64         `json:"last_updated_timestamp"`
	UserID               string        `json:"user_id,omitempty"`
	CurrentStage         string        `json:"current_stage"`
	Description          string        `json:"description,omitempty"`
	Source               string        `json:"source"`
	RunID                string        `json:"run_id,omitempty"`
	Status               string        `json:"status"`
	StatusMessage        string        `json:"status_message,omitempty"`
	Tags                 []tracking.KV `json:"tags,omitempty"`
	RunLink              string        `json:"run_link,omitempty"`
	Aliases              []string      `json:"aliases,omitempty"`
	ModelID              string        `json:"model_id,omitempty"`

	storageLocation string
}

// Store is the registry store. It is safe for concurrent use.
type Store struct {
	db       *meta.DB
	tracking *tracking.Store
	now      func() time.Time
}

// New returns a registry store sharing the tracking store's database.
func New(ts *tracking.Store) *Store {
	return &Store{db: ts.DB(), tracking: ts, now: time.Now}
}

func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }

// Ready reports whether the database answers.
func (s *Store) Ready(ctx context.Context) error { return s.db.Ping(ctx) }

// ValidateName is MLflow's rule for registered model names.
func ValidateName(name, field string) error {
	if strings.TrimSpace(name) == "" {
		return tracking.Required(field, "")
	}
	if strings.ContainsAny(name, "/:") {
		return wire.Invalidf("Invalid model name '%s'. Names cannot contain '/' or ':'.", name)
	}
	if len([]rune(name)) > MaxNameLength {
		return wire.Invalidf("'%s' exceeds the maximum length of %d characters", field, MaxNameLength)
	}
	if c := cleanName(name); c != name {
		return wire.Invalidf("Invalid value \"%s\" for parameter '%s' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", name, field, c)
	}
	return nil
}

// cleanName is posixpath.normpath of a name with no slashes: only "." and ".."
// (and the empty name) change.
func cleanName(name string) string {
	if name == "." || name == ".." {
		return "."
	}
	return name
}

func validateTag(t tracking.KV) error {
	if t.Key == "" {
		return tracking.Required("key", "")
	}
	if strings.ContainsAny(t.Key, "\x00\n\r\t") || t.Key == "." || t.Key == ".." || strings.HasPrefix(t.Key, "/") {
		return wire.Invalidf("Invalid value \"%s\" for parameter 'key' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).", t.Key)
	}
	if len([]rune(t.Key)) > MaxTagKeyLength {
		return wire.Invalidf("'key' exceeds the maximum length of %d characters", MaxTagKeyLength)
	}
	if len([]rune(t.Value)) > MaxTagValueLength {
		return wire.Invalidf("'value' exceeds the maximum length of %d characters", MaxTagValueLength)
	}
	return nil
}

var (
	aliasPattern        = regexp.MustCompile(`^[\w\-]*$`)
	aliasVersionPattern = regexp.MustCompile(`^[vV]\d+$`)
)

// ValidateAlias is MLflow's rule for alias names; reserved also refuses
// "latest" (any case) and version-like names (v1, V12) for new aliases.
func ValidateAlias(alias string, reserved bool) error {
	if alias == "" {
		return wire.Invalidf("Registered model alias name cannot be empty.")
	}
	if !aliasPattern.MatchString(alias) {
		return wire.Invalidf("Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
	}
	if len([]rune(alias)) > MaxAliasLength {
		return wire.Invalidf("'Registered model alias name' exceeds the maximum length of %d characters", MaxAliasLength)
	}
	if reserved {
		if strings.EqualFold(alias, "latest") {
			return wire.Invalidf("'latest' alias name (case insensitive) is reserved.")
		}
		if aliasVersionPattern.MatchString(alias) {
			return wire.Invalidf("Version alias name '%s' is reserved.", alias)
		}
	}
	return nil
}

// parseVersion checks a version number given as a string.
func parseVersion(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, wire.Invalidf("Parameter 'version' must be an integer, got '%s'.", v)
	}
	return n, nil
}

// CanonicalStage maps a stage name, case-insensitively, to its canonical form.
func CanonicalStage(stage string) (string, error) {
	for _, s := range allStages {
		if strings.EqualFold(s, stage) {
			return s, nil
		}
	}
	return "", wire.Invalidf("Invalid Model Version stage: %s. Value must be one of %s.", stage, wire.Prose(strings.Join(allStages, ", ")))
}

const modelColumns = `name, creation_timestamp, last_updated_timestamp, description, user_id`

func scanModel(sc meta.Scanner) (RegisteredModel, error) {
	var m RegisteredModel
	err := sc.Scan(&m.Name, &m.CreationTimestamp, &m.LastUpdatedTimestamp, &m.Description, &m.UserID)
	return m, err
}

const versionColumns = `name, version, creation_timestamp, last_updated_timestamp, description, user_id, current_stage, source, storage_location, run_id, run_link, status, status_message, model_id`

func scanVersion(sc meta.Scanner) (ModelVersion, error) {
	var v ModelVersion
	var n int64
	err := sc.Scan(&v.Name, &n, &v.CreationTimestamp, &v.LastUpdatedTimestamp, &v.Description, &v.UserID, &v.CurrentStage,
		&v.Source, &v.storageLocation, &v.RunID, &v.RunLink, &v.Status, &v.StatusMessage, &v.ModelID)
	v.Version = strconv.FormatInt(n, 10)
	return v, err
}

func (s *Store) model(ctx context.Context, q meta.Querier, name string) (RegisteredModel, error) {
	if err := ValidateName(name, "name"); err != nil {
		return RegisteredModel{}, err
	}
	m, err := scanModel(q.QueryRow(ctx, `SELECT `+modelColumns+` FROM registered_models WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return m, wire.NotFoundf("Registered Model with name=%s not found", name)
	}
	return m, err
}

func (s *Store) version(ctx context.Context, q meta.Querier, name, version string) (ModelVersion, error) {
	n, err := parseVersion(version)
	if err != nil {
		return ModelVersion{}, err
	}
	v, err := scanVersion(q.QueryRow(ctx, `SELECT `+versionColumns+` FROM model_versions WHERE name = ? AND version = ? AND current_stage != ?`,
		name, n, deletedStage))
	if errors.Is(err, sql.ErrNoRows) {
		return v, wire.NotFoundf("Model Version (name=%s, version=%s) not found", name, version)
	}
	return v, err
}
