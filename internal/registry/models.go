package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/search"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// CreateRegisteredModel creates a registered model.
func (s *Store) CreateRegisteredModel(ctx context.Context, name string, tags []tracking.KV, description string) (*RegisteredModel, error) {
	if err := ValidateName(name, "name"); err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := validateTag(t); err != nil {
			return nil, err
		}
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		now := s.nowMillis()
		_, err := tx.Exec(ctx, `INSERT INTO registered_models (`+modelColumns+`) VALUES (?, ?, ?, ?, ?)`, name, now, now, description, "")
		if meta.IsConflict(err) {
			return wire.Existsf("Registered Model (name=%s) already exists.", name)
		}
		if err != nil {
			return err
		}
		return upsertTags(ctx, tx, "registered_model_tags", []any{name}, tags)
	})
	if err != nil {
		return nil, wire.Wrap(err, "create registered model %q", name)
	}
	return s.GetRegisteredModel(ctx, name)
}

// upsertTags writes tags (last write wins) for the owner key columns of table:
// (name) for registered models, (name, version) for versions.
func upsertTags(ctx context.Context, tx *meta.Tx, table string, owner []any, tags []tracking.KV) error {
	cols, marks, conflict := "name", "?", "name"
	if len(owner) == 2 {
		cols, marks, conflict = "name, version", "?, ?", "name, version"
	}
	for _, t := range tags {
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+cols+`, key, value) VALUES (`+marks+`, ?, ?)
			ON CONFLICT (`+conflict+`, key) DO UPDATE SET value = excluded.value`, append(append([]any{}, owner...), t.Key, t.Value)...); err != nil {
			return err
		}
	}
	return nil
}

// GetRegisteredModel returns a registered model with tags, aliases and the
// latest version in each stage.
func (s *Store) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	m, err := s.model(ctx, s.db, name)
	if err != nil {
		return nil, wire.Wrap(err, "get registered model %q", name)
	}
	models := []RegisteredModel{m}
	if err := s.loadModels(ctx, models); err != nil {
		return nil, err
	}
	return &models[0], nil
}

// loadModels fills tags, aliases and latest versions of models in a fixed
// number of queries.
func (s *Store) loadModels(ctx context.Context, models []RegisteredModel) error {
	if len(models) == 0 {
		return nil
	}
	idx := make(map[string]int, len(models))
	names := make([]any, len(models))
	for i, m := range models {
		idx[m.Name] = i
		names[i] = m.Name
	}
	in := "(" + search.Placeholders(len(names)) + ")"
	err := meta.EachRow(ctx, s.db, `SELECT name, key, value FROM registered_model_tags WHERE name IN `+in+` ORDER BY name, key`, names,
		func(rows *sql.Rows) error {
			var name string
			var kv tracking.KV
			if err := rows.Scan(&name, &kv.Key, &kv.Value); err != nil {
				return err
			}
			m := &models[idx[name]]
			m.Tags = append(m.Tags, kv)
			return nil
		})
	if err != nil {
		return fmt.Errorf("load registered model tags: %w", err)
	}
	err = meta.EachRow(ctx, s.db, `SELECT name, alias, version FROM registered_model_aliases WHERE name IN `+in+` ORDER BY name, alias`, names,
		func(rows *sql.Rows) error {
			var name string
			var a Alias
			var v int64
			if err := rows.Scan(&name, &a.Alias, &v); err != nil {
				return err
			}
			a.Version = strconv.FormatInt(v, 10)
			m := &models[idx[name]]
			m.Aliases = append(m.Aliases, a)
			return nil
		})
	if err != nil {
		return fmt.Errorf("load registered model aliases: %w", err)
	}
	// The newest version in each stage.
	var latest []ModelVersion
	err = meta.EachRow(ctx, s.db, `SELECT `+prefixed("v.")+` FROM model_versions v
		JOIN (SELECT name, current_stage, MAX(version) AS version FROM model_versions
			WHERE name IN `+in+` AND current_stage != ? GROUP BY name, current_stage) l
		ON l.name = v.name AND l.version = v.version ORDER BY v.name, v.version`, append(append([]any{}, names...), deletedStage),
		func(rows *sql.Rows) error {
			v, err := scanVersion(rows)
			latest = append(latest, v)
			return err
		})
	if err != nil {
		return fmt.Errorf("load latest versions: %w", err)
	}
	if err := s.loadVersions(ctx, latest); err != nil {
		return err
	}
	for _, v := range latest {
		m := &models[idx[v.Name]]
		m.LatestVersions = append(m.LatestVersions, v)
	}
	return nil
}

// prefixed qualifies versionColumns with a table alias.
func prefixed(p string) string { return search.Qualify(p, versionColumns) }

// UpdateRegisteredModel sets a registered model's description.
func (s *Store) UpdateRegisteredModel(ctx context.Context, name, description string) (*RegisteredModel, error) {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.model(ctx, tx, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE registered_models SET description = ?, last_updated_timestamp = ? WHERE name = ?`, description, s.nowMillis(), name)
		return err
	})
	if err != nil {
		return nil, wire.Wrap(err, "update registered model %q", name)
	}
	return s.GetRegisteredModel(ctx, name)
}

// RenameRegisteredModel renames a registered model and all its versions, tags
// and aliases in one transaction.
func (s *Store) RenameRegisteredModel(ctx context.Context, name, newName string) (*RegisteredModel, error) {
	if err := ValidateName(newName, "new_name"); err != nil {
		return nil, err
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.model(ctx, tx, name); err != nil {
			return err
		}
		now := s.nowMillis()
		_, err := tx.Exec(ctx, `UPDATE registered_models SET name = ?, last_updated_timestamp = ? WHERE name = ?`, newName, now, name)
		if meta.IsConflict(err) {
			return wire.Existsf("Registered Model (name=%s) already exists.", newName)
		}
		if err != nil {
			return err
		}
		for _, table := range []string{"registered_model_tags", "model_version_tags", "registered_model_aliases"} {
			if _, err := tx.Exec(ctx, `UPDATE `+table+` SET name = ? WHERE name = ?`, newName, name); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE model_versions SET name = ?, last_updated_timestamp = ? WHERE name = ?`, newName, now, name)
		return err
	})
	if err != nil {
		return nil, wire.Wrap(err, "rename registered model %q", name)
	}
	return s.GetRegisteredModel(ctx, newName)
}

// DeleteRegisteredModel deletes a registered model with all its versions.
func (s *Store) DeleteRegisteredModel(ctx context.Context, name string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.model(ctx, tx, name); err != nil {
			return err
		}
		for _, table := range []string{"registered_model_aliases", "model_version_tags", "model_versions", "registered_model_tags", "registered_models"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE name = ?`, name); err != nil {
				return err
			}
		}
		return nil
	})
	return wire.Wrap(err, "delete registered model %q", name)
}

// SetRegisteredModelTag sets a tag on a registered model.
func (s *Store) SetRegisteredModelTag(ctx context.Context, name string, tag tracking.KV) error {
	if err := validateTag(tag); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.model(ctx, tx, name); err != nil {
			return err
		}
		return upsertTags(ctx, tx, "registered_model_tags", []any{name}, []tracking.KV{tag})
	})
	return wire.Wrap(err, "set tag on registered model %q", name)
}

// DeleteRegisteredModelTag removes a tag (a missing tag is not an error, as in MLflow).
func (s *Store) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.model(ctx, tx, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM registered_model_tags WHERE name = ? AND key = ?`, name, key)
		return err
	})
	return wire.Wrap(err, "delete tag of registered model %q", name)
}

// GetLatestVersions returns the newest version in each of stages (all stages
// when empty).
func (s *Store) GetLatestVersions(ctx context.Context, name string, stages []string) ([]ModelVersion, error) {
	m, err := s.GetRegisteredModel(ctx, name)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, st := range stages {
		c, err := CanonicalStage(st)
		if err != nil {
			return nil, err
		}
		want[c] = true
	}
	var out []ModelVersion
	for _, v := range m.LatestVersions {
		if len(want) == 0 || want[v.CurrentStage] {
			out = append(out, v)
		}
	}
	return out, nil
}

// SetAlias points alias at a version (moving it if it exists).
func (s *Store) SetAlias(ctx context.Context, name, alias, version string) error {
	if err := ValidateAlias(alias, true); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		v, err := s.version(ctx, tx, name, version)
		if err != nil {
			return err
		}
		n, _ := strconv.ParseInt(v.Version, 10, 64)
		_, err = tx.Exec(ctx, `INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?)
			ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version`, name, alias, n)
		return err
	})
	return wire.Wrap(err, "set alias %q of %q", alias, name)
}

// DeleteAlias removes an alias (a missing alias is not an error, as in MLflow).
func (s *Store) DeleteAlias(ctx context.Context, name, alias string) error {
	if err := ValidateAlias(alias, false); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *meta.Tx) error {
		if _, err := s.model(ctx, tx, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?`, name, alias)
		return err
	})
	return wire.Wrap(err, "delete alias %q of %q", alias, name)
}

// GetVersionByAlias resolves name@alias; "latest" is the highest version.
func (s *Store) GetVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	if err := ValidateAlias(alias, false); err != nil {
		return nil, err
	}
	if _, err := s.model(ctx, s.db, name); err != nil {
		return nil, err
	}
	var version int64
	var query string
	if strings.EqualFold(alias, "latest") {
		query = `SELECT MAX(version) FROM model_versions WHERE name = ? AND current_stage != ?`
		var v *int64
		if err := s.db.QueryRow(ctx, query, name, deletedStage).Scan(&v); err != nil {
			return nil, fmt.Errorf("latest version of %q: %w", name, err)
		}
		if v == nil {
			return nil, wire.NotFoundf("Latest version not found for model %s.", name)
		}
		version = *v
	} else {
		err := s.db.QueryRow(ctx, `SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?`, name, alias).Scan(&version)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, wire.Invalidf("Registered model alias %s not found.", alias)
			}
			return nil, fmt.Errorf("alias %q of %q: %w", alias, name, err)
		}
	}
	return s.GetModelVersion(ctx, name, strconv.FormatInt(version, 10))
}

// ModelQuery is a search_registered_models request.
type ModelQuery struct {
	Filter     string
	MaxResults int64 // default 100, at most 1000
	OrderBy    []string
	PageToken  string
	// Visible, when set, keeps only the models (by name) it accepts: those
	// the caller may read (server.VisibleFrom). Pages stay full.
	Visible func(name string) bool
}

var modelOrderColumn = map[string]string{
	"name": "m.name", "timestamp": "m.creation_timestamp", "creation_timestamp": "m.creation_timestamp",
	"last_updated_timestamp": "m.last_updated_timestamp",
}

// SearchRegisteredModels returns a page of registered models (prompts excluded,
// as in MLflow) and the next page token.
func (s *Store) SearchRegisteredModels(ctx context.Context, q ModelQuery) ([]RegisteredModel, string, error) {
	limit, offset, err := search.Page(q.MaxResults, DefaultSearchModels, MaxSearchModels, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	clauses, err := search.Parse(search.RegisteredModels, q.Filter)
	if err != nil {
		return nil, "", err
	}
	if err := search.CheckRequestClauses(clauses); err != nil {
		return nil, "", err
	}
	clauses, prompts := promptFilter(clauses)
	var w search.Where
	for _, c := range clauses {
		if c.Entity == search.Tag {
			cond, args := search.Compare("t.value", c)
			w.Add("EXISTS (SELECT 1 FROM registered_model_tags t WHERE t.name = m.name AND t.key = ? AND "+cond+")", append([]any{c.Key}, args...)...)
			continue
		}
		cond, args := search.Compare("m.name", c)
		w.Add(cond, args...)
	}
	if !prompts {
		w.Add("NOT EXISTS (SELECT 1 FROM registered_model_tags pt WHERE pt.name = m.name AND pt.key = ? AND LOWER(pt.value) = 'true')", promptTag)
	}
	order, err := orderClauses(search.RegisteredModels, q.OrderBy, modelOrderColumn, []string{"m.name ASC"})
	if err != nil {
		return nil, "", err
	}
	var keep func(RegisteredModel) bool
	if q.Visible != nil {
		keep = func(m RegisteredModel) bool { return q.Visible(m.Name) }
	}
	query := `SELECT ` + search.Qualify("m.", modelColumns) + ` FROM registered_models m WHERE ` + w.SQL() + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
	models, next, err := search.KeptPage(func(n int64, off int) ([]RegisteredModel, error) {
		return meta.Collect(ctx, s.db, query, append(slices.Clip(w.Args), n, off), scanModel)
	}, keep, limit, offset)
	if err != nil {
		return nil, "", fmt.Errorf("search registered models: %w", err)
	}
	if err := s.loadModels(ctx, models); err != nil {
		return nil, "", err
	}
	return models, next, nil
}

// promptFilter implements MLflow's prompt handling: searches return models,
// not prompts (registered models tagged mlflow.prompt.is_prompt=true), unless
// the filter asks for prompts. Clients add "tags.mlflow.prompt.is_prompt !=
// 'true'", which must also match models without the tag, so clauses on that tag
// are dropped and replaced by the caller's anti-join.
func promptFilter(clauses []search.Clause) (rest []search.Clause, prompts bool) {
	for _, c := range clauses {
		if c.Entity == search.Tag && c.Key == promptTag {
			v := strings.ToLower(c.Str)
			if (c.Op == "=" && v == "true") || (c.Op == "!=" && v == "false") {
				prompts = true
				rest = append(rest, search.Clause{Entity: search.Tag, Key: promptTag, Op: "ILIKE", Str: "true"})
			}
			continue
		}
		rest = append(rest, c)
	}
	return rest, prompts
}

// orderClauses turns order_by entries into SQL, appending defaults for keys not given.
func orderClauses(g *search.Grammar, orderBy []string, cols map[string]string, defaults []string) (string, error) {
	var out []string
	seen := map[string]bool{}
	for _, o := range orderBy {
		ob, err := search.ParseOrderBy(g, o)
		if err != nil {
			return "", err
		}
		col := cols[ob.Key]
		if seen[col] {
			return "", wire.Invalidf("`order_by` contains duplicate fields: %v", orderBy)
		}
		seen[col] = true
		dir := " ASC"
		if !ob.Asc {
			dir = " DESC"
		}
		out = append(out, col+dir)
	}
	for _, d := range defaults {
		if col, _, _ := strings.Cut(d, " "); !seen[col] {
			out = append(out, d)
		}
	}
	return strings.Join(out, ", "), nil
}

// VersionStamp tells a registered version from another of the same
// model and number: a model deleted and created again numbers its versions
// from 1 anew.
type VersionStamp struct {
	// Created is the version's creation_timestamp (Unix ms), Source its
	// source.
	Created int64
	Source  string
}

// LiveVersions returns the versions of the named models that are not
// deleted, with their stamps (name -> version -> stamp), in one query:
// what a model server polls to stop serving deleted versions.
func (s *Store) LiveVersions(ctx context.Context, names []string) (map[string]map[string]VersionStamp, error) {
	out := make(map[string]map[string]VersionStamp, len(names))
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(names)+1)
	for _, n := range names {
		args = append(args, n)
	}
	args = append(args, deletedStage)
	err := meta.EachRow(ctx, s.db, `SELECT name, version, creation_timestamp, source FROM model_versions WHERE name IN (`+search.Placeholders(len(names))+`) AND current_stage != ?`, args,
		func(rows *sql.Rows) error {
			var name string
			var v int64
			var st VersionStamp
			if err := rows.Scan(&name, &v, &st.Created, &st.Source); err != nil {
				return err
			}
			if out[name] == nil {
				out[name] = map[string]VersionStamp{}
			}
			out[name][strconv.FormatInt(v, 10)] = st
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("versions of %d models: %w", len(names), err)
	}
	return out, nil
}

// AliasVersions returns the aliases of the named models (name -> alias ->
// version) in one query: what a model server polls to follow deploys. A
// model without aliases, or that does not exist, has no entry.
func (s *Store) AliasVersions(ctx context.Context, names []string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(names))
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	err := meta.EachRow(ctx, s.db, `SELECT name, alias, version FROM registered_model_aliases WHERE name IN (`+search.Placeholders(len(names))+`)`, args,
		func(rows *sql.Rows) error {
			var name, alias string
			var v int64
			if err := rows.Scan(&name, &alias, &v); err != nil {
				return err
			}
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			out[name][alias] = strconv.FormatInt(v, 10)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("aliases of %d models: %w", len(names), err)
	}
	return out, nil
}
