package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/quality"
	"github.com/atrium-ml/atrium/internal/spec"
)

// Binder is the part of an SQL engine that validation needs.
type Binder interface {
	// SourceSchema returns a source's columns and SQL types, read from its files;
	// found is false (and err nil) when no file matches the source's path yet.
	SourceSchema(ctx context.Context, src *spec.Source) (cols []SourceColumn, found bool, err error)
	// Describe binds a query without running it and returns its output columns.
	Describe(ctx context.Context, query string) ([]SourceColumn, error)
	// ParseExpr checks, without binding, that expr is one SQL expression that
	// stays one when pasted in parentheses into a query: it closes every
	// parenthesis it opens and no other, has no top-level ',' or alias, no query
	// clause, and no subquery or window function. The error says what was
	// expected.
	ParseExpr(ctx context.Context, expr string) error
}

// Validate checks every SQL expression of the catalog the way the plan uses it:
// feature expressions and where clauses are bound against their source's schema
// (parsed only when the source has no files yet), keys and timestamps must exist
// with usable types, declared types must match the expressions' types, and derived
// features are bound against the set's own columns. Every problem is returned,
// located at the definition's line.
func Validate(ctx context.Context, b Binder, f *spec.Features) (problems spec.Problems, notes []string) {
	var ps spec.Problems
	schemas := map[string][]SourceColumn{}
	for _, src := range f.Sources {
		cols, found, err := b.SourceSchema(ctx, src)
		switch {
		case errors.Is(err, offline.ErrSource):
			// The engine explained what is wrong with the files, naming them.
			ps.Add(src.File, src.At("path"), "source %q: %s", src.Name, oneLine(err))
			continue
		case err != nil:
			ps.Add(src.File, src.At("path"), "source %q: cannot read %s: %s", src.Name, src.Path, oneLine(err))
			continue
		case !found:
			notes = append(notes, fmt.Sprintf("%s:%d: source %q: no file matches %s yet; its feature expressions were parsed but not type-checked",
				src.File, src.At("path"), src.Name, src.Path))
			continue
		}
		schemas[src.Name] = cols
		if ts, ok := columnType(cols, src.Timestamp); !ok {
			ps.Add(src.File, src.At("timestamp"), "source %q: no timestamp column %q in %s, expected one of: %s", src.Name, src.Timestamp, src.Path, columnNames(cols))
		} else if !TimestampCompatible(ts) {
			ps.Add(src.File, src.At("timestamp"), "source %q: timestamp column %q has type %s, expected TIMESTAMP, DATE or ISO-8601 text", src.Name, src.Timestamp, ts)
		}
	}
	for _, fs := range f.FeatureSets {
		src := f.Source(fs.Source)
		if src == nil {
			continue
		}
		cols, typed := schemas[src.Name]
		keys := f.JoinKeys(fs.Name)
		if typed {
			for _, k := range keys {
				if t, ok := columnType(cols, k); !ok {
					ps.Add(fs.File, fs.At("entity"), "feature set %q: source %q has no join key column %q, expected one of: %s", fs.Name, src.Name, k, columnNames(cols))
				} else if !IntegerType(t) && t != "VARCHAR" {
					ps.Add(fs.File, fs.At("entity"), "feature set %q: join key %q has type %s in source %q, expected an integer or text column", fs.Name, k, t, src.Name)
				}
			}
		}
		rel := emptyRelation(cols)
		check := func(line int, what, expr string, want spec.Type, anyType bool) {
			// Parse first: the plan pastes the text in parentheses, so it must be
			// one expression that cannot reach past them.
			if err := b.ParseExpr(ctx, expr); err != nil {
				ps.Add(fs.File, line, "feature set %q: %s: bad SQL expression %q: %s", fs.Name, what, expr, oneLine(err))
				return
			}
			if !typed {
				return
			}
			// The keys sit beside the expression so an aggregate function, which the
			// plan cannot use per row, fails to bind here too.
			sel := append(quoteAll(presentKeys(keys, cols)), "("+expr+") AS atrium_x")
			out, err := b.Describe(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), rel))
			if err != nil {
				msg := oneLine(err)
				// An expression that binds alone but not beside the keys
				// aggregates rows (told apart by binding, not by the
				// engine's wording).
				if _, aloneErr := b.Describe(ctx, fmt.Sprintf("SELECT (%s) AS atrium_x FROM %s", expr, rel)); aloneErr == nil {
					msg = "aggregate functions are not allowed in a feature expression, expected a per-row expression (aggregations go in aggs: [...])"
				}
				ps.Add(fs.File, line, "feature set %q: %s: bad SQL expression %q: %s", fs.Name, what, expr, msg)
				return
			}
			got := out[len(out)-1].Type
			if !anyType && !Compatible(want, got) {
				ps.Add(fs.File, line, "feature set %q: %s: type mismatch: expression %q has type %s, declared %s (expected %s)", fs.Name, what, expr, got, want, sqlTypesFor(want))
			}
		}
		if fs.Where != "" {
			check(fs.At("where"), "where", fs.Where, spec.Bool, false)
		}
		for _, ft := range fs.Features {
			if ft.Expr == "" || !ft.Type.Valid() {
				continue
			}
			check(ft.At("expr"), "feature "+ft.Name, ft.Expr, ft.Type, fs.Aggregated() && countOnly(ft))
		}
		validateDerived(ctx, b, fs, keys, &ps)
	}
	return ps, notes
}

// ParseSet checks every expression of a set with ParseExpr, for an engine about
// to paste them into a plan: a catalog registered by an older Atrium may hold
// expressions that its apply did not check as strictly.
func ParseSet(ctx context.Context, b interface {
	ParseExpr(ctx context.Context, expr string) error
}, fs *spec.FeatureSet) error {
	check := func(what, expr string) error {
		if err := b.ParseExpr(ctx, expr); err != nil {
			return fmt.Errorf("feature set %s: %s: bad SQL expression %q: %s (rerun atrium apply)", fs.Name, what, expr, oneLine(err))
		}
		return nil
	}
	if fs.Where != "" {
		if err := check("where", fs.Where); err != nil {
			return err
		}
	}
	for _, ft := range fs.Features {
		if err := check("feature "+ft.Name, ft.Expr); err != nil {
			return err
		}
	}
	for _, d := range fs.Derived {
		if err := check("derived feature "+d.Name, d.Expr); err != nil {
			return err
		}
	}
	return nil
}

// validateDerived binds derived expressions against the set's computed columns.
func validateDerived(ctx context.Context, b Binder, fs *spec.FeatureSet, keys []string, ps *spec.Problems) {
	if len(fs.Derived) == 0 {
		return
	}
	var cols []SourceColumn
	for _, k := range keys {
		cols = append(cols, SourceColumn{Name: k, Type: "VARCHAR"})
	}
	cols = append(cols, SourceColumn{Name: spec.TimestampColumn, Type: "TIMESTAMP"})
	for _, c := range fs.Columns() {
		if !c.Derived && c.Type.Valid() {
			cols = append(cols, SourceColumn{Name: c.Name, Type: c.Type.SQL()})
		}
	}
	rel := emptyRelation(cols)
	for _, d := range fs.Derived {
		if d.Expr == "" || !d.Type.Valid() {
			continue
		}
		err := b.ParseExpr(ctx, d.Expr)
		var out []SourceColumn
		if err == nil {
			out, err = b.Describe(ctx, fmt.Sprintf("SELECT (%s) AS atrium_x FROM %s", d.Expr, rel))
		}
		if err != nil {
			ps.Add(d.File, d.At("expr"), "feature set %q: derived feature %s: bad SQL expression %q: %s (the set's columns: %s)",
				fs.Name, d.Name, d.Expr, oneLine(err), columnNames(cols[len(keys)+1:]))
			continue
		}
		if got := out[0].Type; !Compatible(d.Type, got) {
			ps.Add(d.File, d.At("expr"), "feature set %q: derived feature %s: type mismatch: expression %q has type %s, declared %s (expected %s)",
				fs.Name, d.Name, d.Expr, got, d.Type, sqlTypesFor(d.Type))
		}
	}
}

// emptyRelation is a subquery with the given typed columns and no rows.
func emptyRelation(cols []SourceColumn) string {
	if len(cols) == 0 {
		return "(SELECT 1 AS atrium_none WHERE false) AS atrium_source"
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, quality.Quote(c.Name))
	}
	return "(SELECT " + strings.Join(sel, ", ") + " WHERE false) AS atrium_source"
}

func columnType(cols []SourceColumn, name string) (string, bool) {
	for _, c := range cols {
		if c.Name == name {
			return c.Type, true
		}
	}
	return "", false
}

func presentKeys(keys []string, cols []SourceColumn) []string {
	var out []string
	for _, k := range keys {
		if _, ok := columnType(cols, k); ok {
			out = append(out, k)
		}
	}
	return out
}

func sqlTypesFor(t spec.Type) string {
	switch t {
	case spec.Int64:
		return "an integer type; CAST(... AS BIGINT) to convert"
	case spec.Float64:
		return "a numeric type"
	case spec.String:
		return "VARCHAR; CAST(... AS VARCHAR) to convert"
	case spec.Bool:
		return "BOOLEAN"
	case spec.Timestamp:
		return "TIMESTAMP or DATE"
	}
	return string(t)
}

// oneLine keeps the first lines of an engine error, up to the position marker
// (which points into Atrium's wrapper query, not the user's expression).
func oneLine(err error) string {
	var keep []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "LINE ") {
			break
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, " ")
}
