package registry

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// VersionCreate is a create_model_version request.
type VersionCreate struct {
	Name        string
	Source      string
	RunID       string
	ModelID     string
	RunLink     string
	Description string
	Tags        []tracking.KV
}

// lineage is where a version's files are and what produced them.
type lineage struct {
	source, storage, runID, modelID string
}

func invalidSource(source, by string) error {
	return wire.Invalidf(modelVersionSourceMessage+"The %s request parameter must identify the resource that contains the source.", source, by)
}

// resolveSource checks a source against the URI policy and against the run or
// logged model it claims to come from, and finds where its files are stored.
func (s *Store) resolveSource(ctx context.Context, c VersionCreate) (lineage, error) {
	l := lineage{source: c.Source, storage: c.Source, runID: c.RunID, modelID: c.ModelID}
	if err := s.tracking.CheckSource(c.Source); err != nil {
		return l, err
	}
	scheme, rest, _ := strings.Cut(c.Source, ":")
	switch strings.ToLower(scheme) {
	case "models":
		ref := strings.TrimLeft(rest, "/")
		if strings.HasPrefix(ref, "m-") && !strings.ContainsAny(ref, "/@") {
			// models:/<model_id>: a logged model, which the request must name.
			if c.ModelID != ref {
				return l, invalidSource(c.Source, "model_id")
			}
			m, err := s.tracking.GetLoggedModel(ctx, ref, false)
			if err != nil {
				return l, invalidSource(c.Source, "model_id")
			}
			l.storage = m.Info.ArtifactURI
			if l.runID == "" {
				l.runID = m.Info.SourceRunID
			}
			return l, nil
		}
		// models:/<name>/<version> or models:/<name>@<alias>: another version.
		v, err := s.resolveModelURI(ctx, ref)
		if err != nil {
			return l, err
		}
		if (c.RunID != "" && c.RunID != v.RunID) || (c.ModelID != "" && c.ModelID != v.ModelID) {
			return l, wire.Invalidf(modelVersionSourceMessage+"The run_id and model_id request parameters must match the referenced model version.", c.Source)
		}
		return lineage{source: "models:/" + v.Name + "/" + v.Version, storage: v.storageLocation, runID: v.RunID, modelID: v.ModelID}, nil
	case "runs":
		if c.ModelID != "" {
			return l, invalidSource(c.Source, "model_id")
		}
		runID, path, _ := strings.Cut(strings.TrimLeft(rest, "/"), "/")
		if runID == "" || runID != c.RunID {
			return l, invalidSource(c.Source, "run_id")
		}
		info, err := s.tracking.RunInfoOf(ctx, runID)
		if err != nil {
			return l, invalidSource(c.Source, "run_id")
		}
		l.storage = strings.TrimRight(info.ArtifactURI, "/")
		if path != "" {
			l.storage += "/" + path
		}
		return l, nil
	}
	// A storage URI (mlflow-artifacts:/, or the server's own artifact root): it
	// must lie inside the logged model's or the run's artifacts.
	if c.ModelID != "" {
		m, err := s.tracking.GetLoggedModel(ctx, c.ModelID, false)
		if err != nil || !tracking.WithinRoot(c.Source, m.Info.ArtifactURI) {
			return l, invalidSource(c.Source, "model_id")
		}
		return l, nil
	}
	if c.RunID == "" {
		return l, invalidSource(c.Source, "run_id")
	}
	info, err := s.tracking.RunInfoOf(ctx, c.RunID)
	if err != nil || !tracking.WithinRoot(c.Source, info.ArtifactURI) {
		return l, invalidSource(c.Source, "run_id")
	}
	return l, nil
}

// checkRunLink accepts an empty run_link or an absolute http(s) URL. Web UIs
// render it as a link: a javascript: or data: URL stored here would run
// script in the browser of whoever clicks it.
func checkRunLink(link string) error {
	if link == "" {
		return nil
	}
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return wire.Invalidf("Invalid value '%s' for parameter 'run_link' supplied: expected an http:// or https:// URL", link)
	}
	return nil
}

// resolveModelURI resolves "<name>/<version>", "<name>@<alias>",
// "<name>/latest" (the newest version) or "<name>/<stage>" (the newest version
// in that stage).
func (s *Store) resolveModelURI(ctx context.Context, ref string) (*ModelVersion, error) {
	if name, alias, ok := strings.Cut(ref, "@"); ok {
		return s.GetVersionByAlias(ctx, name, alias)
	}
	i := strings.LastIndexByte(ref, '/')
	if i <= 0 {
		return nil, wire.Invalidf("Invalid model URI 'models:/%s': expected models:/<name>/<version>, models:/<name>@<alias> or models:/<model_id>", ref)
	}
	name, which := ref[:i], ref[i+1:]
	if _, err := strconv.ParseInt(which, 10, 64); err == nil {
		return s.GetModelVersion(ctx, name, which)
	}
	if strings.EqualFold(which, "latest") {
		// MLflow's models:/<name>/latest: the newest version of any stage.
		vs, err := s.GetLatestVersions(ctx, name, nil)
		if err != nil {
			return nil, err
		}
		var newest *ModelVersion
		for i := range vs {
			if newest == nil || versionNumber(vs[i]) > versionNumber(*newest) {
				newest = &vs[i]
			}
		}
		if newest == nil {
			return nil, wire.NotFoundf("No versions of model with name '%s' found", name)
		}
		return newest, nil
	}
	vs, err := s.GetLatestVersions(ctx, name, []string{which})
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, wire.NotFoundf("No versions of model with name '%s' and stage '%s' found", name, which)
	}
	return &vs[0], nil
}

// versionNumber is v's version as a number (versions are stored as integers).
func versionNumber(v ModelVersion) int64 {
	n, _ := strconv.ParseInt(v.Version, 10, 64)
	return n
}

// CreateModelVersion registers a new version (READY at once: the files stay where
// the source points). Its number is one more than any version ever created.
func (s *Store) CreateModelVersion(ctx context.Context, c VersionCreate) (*ModelVersion, error) {
	if err := ValidateName(c.Name, "name"); err != nil {
		return nil, err
	}
	if err := tracking.Required("source", c.Source); err != nil {
		return nil, err
	}
	if c.RunID != "" {
		if err := tracking.ValidateRunID(c.RunID, "run_id"); err != nil {
			return nil, err
		}
	}
	if err := checkRunLink(c.RunLink); err != nil {
		return nil, err
	}
	for _, t := range c.Tags {
		if err := validateTag(t); err != nil {
			return nil, err
		}
	}
	l, err := s.resolveSource(ctx, c)
	if err != nil {
		return nil, err
	}
	var version int64
	err = s.db.InTx(ctx, func(tx *meta.Tx) error {
		// Touching the model row first locks it: concurrent creates of versions of
		// one model queue here instead of picking the same number.
		now := s.nowMillis()
		res, err := tx.Exec(ctx, `UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?`, now, c.Name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return wire.NotFoundf("Registered Model with name=%s not found", c.Name)
		}
		var maxV *int64
		if err := tx.QueryRow(ctx, `SELECT MAX(version) FROM model_versions WHERE name = ?`, c.Name).Scan(&maxV); err != nil {
			return err
		}
		version = 1
		if maxV != nil {
			version = *maxV + 1
		}
		if _, err := tx.Exec(ctx, `INSERT INTO model_versions (`+versionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Name, version, now, now, c.Description, "", StageNone, l.source, l.storage, l.runID, c.RunLink, "READY", "", l.modelID); err != nil {
			return err
		}
		return upsertTags(ctx, tx, "model_version_tags", []any{c.Name, version}, c.Tags)
	})
	if err != nil {
		return nil, wire.Wrap(err, "create version of %q", c.Name)
	}
	v := strconv.FormatInt(version, 10)
	if l.modelID != "" {
		if err := s.tracking.AddModelVersionRegistration(ctx, l.modelID, c.Name, v); err != nil {
			return nil, err
		}
	}
	return s.GetModelVersion(ctx, c.Name, v)
}

// GetModelVersion returns a version with its tags and aliases.
func (s *Store) GetModelVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	v, err := s.version(ctx, s.db, name, version)
	if err != nil {
		return nil, wire.Wrap(err, "get version %s of %q", version, name)
	}
	vs := []ModelVersion{v}
	if err := s.loadVersions(ctx, vs); err != nil {
		return nil, err
	}
	return &vs[0], nil
}

// loadVersions fills tags and aliases of versions in two queries per 250 versions.
func (s *Store) loadVersions(ctx context.Context, vs []ModelVersion) error {
	type key struct{ name, version string }
	idx := make(map[key]int, len(vs))
	for i, v := range vs {
		idx[key{v.Name, v.Version}] = i
	}
	for start := 0; start < len(vs); start += 250 {
		part := vs[start:min(start+250, len(vs))]
		conds := make([]string, len(part))
		args := make([]any, 0, 2*len(part))
		for i, v := range part {
			conds[i] = "(name = ? AND version = ?)"
			n, _ := strconv.ParseInt(v.Version, 10, 64)
			args = append(args, v.Name, n)
		}
		where := strings.Join(conds, " OR ")
		err := meta.EachRow(ctx, s.db, `SELECT name, version, key, value FROM model_version_tags WHERE `+where+` ORDER BY name, version, key`, args,
			func(rows *sql.Rows) error {
				var name string
				var n int64
				var kv tracking.KV
				if err := rows.Scan(&name, &n, &kv.Key, &kv.Value); err != nil {
					return err
				}
				v := &vs[idx[key{name, strconv.FormatInt(n, 10)}]]
				v.Tags = append(v.Tags, kv)
				return nil
			})
		if err != nil {
			return fmt.Errorf("load model version tags: %w", err)
		}
		err = meta.EachRow(ctx, s.db, `SELECT name, version, alias FROM registered_model_aliases WHERE `+where+` ORDER BY name, alias`, args,
			func(rows *sql.Rows) error {
				var name, alias string
				var n int64
				if err := rows.Scan(&name, &n, &alias); err != nil {
					return err
				}
				v := &vs[idx[key{name, strconv.FormatInt(n, 10)}]]
				v.Aliases = append(v.Aliases, alias)
				return nil
			})
		if err != nil {
			return fmt.Errorf("load model version aliases: %w", err)
		}
	}
	return nil
}

// UpdateModelVersion sets a version's description.
func (s *Store) UpdateModelVersion(ctx context.Context, name, version, description string) (*ModelVersion, error) {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		v, err := s.version(ctx, tx, name, version)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE model_versions SET description = ?, last_updated_timestamp = ? WHERE name = ? AND version = ?`,
			description, s.nowMillis(), name, mustInt(v.Version))
		return err
	})
	if err != nil {
		return nil, wire.Wrap(err, "update version %s of %q", version, name)
	}
	return s.GetModelVersion(ctx, name, version)
}

func mustInt(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// TransitionStage moves a version to a stage. With archiveExisting, the other
// versions in that stage (Staging or Production only) move to Archived.
func (s *Store) TransitionStage(ctx context.Context, name, version, stage string, archiveExisting bool) (*ModelVersion, error) {
	canon, err := CanonicalStage(stage)
	if err != nil {
		return nil, err
	}
	if archiveExisting && canon != StageStaging && canon != StageProduction {
		return nil, wire.Invalidf("Model version transition cannot archive existing model versions because '%s' is not an Active stage. Valid stages are ['Staging', 'Production']", stage)
	}
	err = s.db.InTx(ctx, func(tx *meta.Tx) error {
		v, err := s.version(ctx, tx, name, version)
		if err != nil {
			return err
		}
		now := s.nowMillis()
		n := mustInt(v.Version)
		if archiveExisting {
			if _, err := tx.Exec(ctx, `UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ?
				WHERE name = ? AND version != ? AND current_stage = ?`, StageArchived, now, name, n, canon); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ? WHERE name = ? AND version = ?`,
			canon, now, name, n); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?`, now, name)
		return err
	})
	if err != nil {
		return nil, wire.Wrap(err, "transition version %s of %q", version, name)
	}
	return s.GetModelVersion(ctx, name, version)
}

// DeleteModelVersion deletes a version and its aliases. Its number is not reused.
func (s *Store) DeleteModelVersion(ctx context.Context, name, version string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		v, err := s.version(ctx, tx, name, version)
		if err != nil {
			return err
		}
		n, now := mustInt(v.Version), s.nowMillis()
		if _, err := tx.Exec(ctx, `DELETE FROM registered_model_aliases WHERE name = ? AND version = ?`, name, n); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM model_version_tags WHERE name = ? AND version = ?`, name, n); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ?, description = '',
			source = 'REDACTED-SOURCE-PATH', storage_location = '', run_id = '', run_link = '', status_message = ''
			WHERE name = ? AND version = ?`, deletedStage, now, name, n); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE registered_models SET last_updated_timestamp = ? WHERE name = ?`, now, name)
		return err
	})
	return wire.Wrap(err, "delete version %s of %q", version, name)
}

// DownloadURI is where a version's files can be read (the resolved storage
// location of its source).
func (s *Store) DownloadURI(ctx context.Context, name, version string) (string, error) {
	v, err := s.version(ctx, s.db, name, version)
	if err != nil {
		return "", wire.Wrap(err, "download URI of version %s of %q", version, name)
	}
	if v.storageLocation != "" {
		return v.storageLocation, nil
	}
	return v.Source, nil
}

// SetModelVersionTag sets a tag on a version.
func (s *Store) SetModelVersionTag(ctx context.Context, name, version string, tag tracking.KV) error {
	if err := validateTag(tag); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		v, err := s.version(ctx, tx, name, version)
		if err != nil {
			return err
		}
		return upsertTags(ctx, tx, "model_version_tags", []any{name, mustInt(v.Version)}, []tracking.KV{tag})
	})
	return wire.Wrap(err, "set tag on version %s of %q", version, name)
}

// DeleteModelVersionTag removes a tag from a version.
func (s *Store) DeleteModelVersionTag(ctx context.Context, name, version, key string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		v, err := s.version(ctx, tx, name, version)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?`, name, mustInt(v.Version), key)
		return err
	})
	return wire.Wrap(err, "delete tag of version %s of %q", version, name)
}

var versionOrderColumn = map[string]string{
	"name": "v.name", "version_number": "v.version", "creation_timestamp": "v.creation_timestamp",
	"last_updated_timestamp": "v.last_updated_timestamp",
}

// VersionQuery is a search_model_versions request.
type VersionQuery struct {
	Filter     string
	MaxResults int64 // default and maximum 200000
	OrderBy    []string
	PageToken  string
	// Visible, when set, keeps only the versions of the models (by name)
	// it accepts: those the caller may read (server.VisibleFrom). Pages
	// stay full.
	Visible func(name string) bool
}

// SearchModelVersions returns a page of versions and the next page token.
func (s *Store) SearchModelVersions(ctx context.Context, q VersionQuery) ([]ModelVersion, string, error) {
	limit, offset, err := search.Page(q.MaxResults, DefaultSearchVersions, MaxSearchVersions, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	clauses, err := search.Parse(search.ModelVersions, q.Filter)
	if err != nil {
		return nil, "", err
	}
	if err := search.CheckRequestClauses(clauses); err != nil {
		return nil, "", err
	}
	clauses, prompts := promptFilter(clauses)
	var w search.Where
	w.Add("v.current_stage != ?", deletedStage)
	if !prompts {
		w.Add("NOT EXISTS (SELECT 1 FROM registered_model_tags pt WHERE pt.name = v.name AND pt.key = ? AND LOWER(pt.value) = 'true')", promptTag)
	}
	for _, c := range clauses {
		switch {
		case c.Entity == search.Tag:
			cond, args := search.Compare("t.value", c)
			w.Add("EXISTS (SELECT 1 FROM model_version_tags t WHERE t.name = v.name AND t.version = v.version AND t.key = ? AND "+cond+")",
				append([]any{c.Key}, args...)...)
		case c.Key == "version_number":
			cond, args := search.Compare("v.version", c)
			w.Add(cond, args...)
		case c.Key == "source_path":
			cond, args := search.Compare("v.source", c)
			w.Add(cond, args...)
		default: // name, run_id
			cond, args := search.Compare("v."+c.Key, c)
			w.Add(cond, args...)
		}
	}
	order, err := orderClauses(search.ModelVersions, q.OrderBy, versionOrderColumn, []string{"v.name ASC", "v.version DESC"})
	if err != nil {
		return nil, "", err
	}
	var keep func(ModelVersion) bool
	if q.Visible != nil {
		keep = func(v ModelVersion) bool { return q.Visible(v.Name) }
	}
	query := `SELECT ` + prefixed("v.") + ` FROM model_versions v WHERE ` + w.SQL() + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
	vs, next, err := search.KeptPage(func(n int64, off int) ([]ModelVersion, error) {
		return meta.Collect(ctx, s.db, query, append(slices.Clip(w.Args), n, off), scanVersion)
	}, keep, limit, offset)
	if err != nil {
		return nil, "", fmt.Errorf("search model versions: %w", err)
	}
	if err := s.loadVersions(ctx, vs); err != nil {
		return nil, "", err
	}
	return vs, next, nil
}
