package spec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/atrium-ml/atrium/internal/data/ondemand"
	"github.com/atrium-ml/atrium/internal/data/online"
)

// OnDemandSet is a group of request-time features: CEL expressions over the
// features of its sources (feature sets or services, fetched for the same
// entity row) and over values sent with the request. They are computed after
// retrieval, never stored: by `atrium historical` over the point-in-time join
// and by the online API over the online read, with one evaluator
// (internal/data/ondemand), so training and serving see the same values.
// It is Feast's on_demand_feature_view with a request source:
//
//	on_demand_features:
//	  - name: user_listing
//	    sources: [user_profile, listing_profile]
//	    request: {budget_override: float64}
//	    features:
//	      - {name: rent_to_budget, type: float64, expr: "rent / budget"}
//
// An expression reads a source's feature by its column name (rent, ctr_7d,
// clicks_sum_7d) and a request value by its name; a name two sources share is
// ambiguous and refused. Feature services list its features like any other
// (user_listing:rent_to_budget, or user_listing for all of them).
type OnDemandSet struct {
	Name    string   `json:"name"`
	Sources []string `json:"sources"`
	// Request are the values a request sends (Feast's RequestSource schema),
	// in declaration order. Offline they are spine columns of the same name.
	Request     []RequestField `json:"request,omitempty"`
	Features    []*Feature     `json:"features"`
	Description string         `json:"description,omitempty"`
	Pos         `json:"-"`
}

// RequestField is a typed value sent with a request.
type RequestField struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// OnDemandVar is a variable of an on-demand set's expressions: a source
// feature (Feature set) or a request value (Feature nil).
type OnDemandVar struct {
	Name    string
	Type    Type
	Feature *ResolvedFeature
}

// OnDemand returns the on-demand set named name, or nil.
func (f *Features) OnDemand(name string) *OnDemandSet {
	return find(f.OnDemandSets, func(v *OnDemandSet) bool { return v.Name == name })
}

// Kind is the online value kind that holds t's values.
func (t Type) Kind() online.Kind {
	switch t {
	case Int64:
		return online.KindInt64
	case Float64:
		return online.KindFloat64
	case String:
		return online.KindString
	case Bool:
		return online.KindBool
	case Timestamp:
		return online.KindTime
	}
	return online.KindMissing
}

// OnDemandVars returns the variables of an on-demand set: its sources'
// features in resolution order, then its request values.
func (f *Features) OnDemandVars(name string) ([]OnDemandVar, error) {
	s := f.OnDemand(name)
	if s == nil {
		return nil, fmt.Errorf("%w: unknown on-demand set %q", ErrUnknownFeature, name)
	}
	vars, problems := f.onDemandVars(s)
	if len(problems) > 0 {
		return nil, fmt.Errorf("on-demand set %q: %s", name, strings.Join(problems, "; "))
	}
	return vars, nil
}

// onDemandVars resolves s's variables; problems are the unknown sources and
// ambiguous names.
func (f *Features) onDemandVars(s *OnDemandSet) ([]OnDemandVar, []string) {
	var vars []OnDemandVar
	var problems []string
	where := map[string]string{}
	add := func(v OnDemandVar, from string) {
		if prev, dup := where[v.Name]; dup {
			if prev != from {
				problems = append(problems, fmt.Sprintf("%q is both %s and %s, expected names that tell them apart", v.Name, prev, from))
			}
			return
		}
		where[v.Name] = from
		vars = append(vars, v)
	}
	for _, src := range s.Sources {
		if setName, _, _ := strings.Cut(src, ":"); f.OnDemand(setName) != nil && f.Set(setName) == nil && f.Service(setName) == nil {
			problems = append(problems, fmt.Sprintf("source %q is an on-demand set, expected a feature set or service", src))
			continue
		}
		got, err := f.resolveStored(src)
		if err != nil {
			problems = append(problems, fmt.Sprintf("source %s", strings.TrimPrefix(err.Error(), "reference ")))
			continue
		}
		for _, r := range got {
			if r.OnDemand {
				problems = append(problems, fmt.Sprintf("source %q holds on-demand feature %s, expected stored features only", src, r.Ref))
				continue
			}
			add(OnDemandVar{Name: r.Name, Type: r.Type, Feature: &r}, r.Ref)
		}
	}
	for _, rf := range s.Request {
		add(OnDemandVar{Name: rf.Name, Type: rf.Type}, "request value "+rf.Name)
	}
	return vars, problems
}

// CompileOnDemand compiles an on-demand set's expressions (in Features
// order) over its variables (OnDemandVars order).
func (f *Features) CompileOnDemand(name string) (*ondemand.Program, []OnDemandVar, error) {
	vars, err := f.OnDemandVars(name)
	if err != nil {
		return nil, nil, err
	}
	s := f.OnDemand(name)
	exprs := make([]ondemand.Expr, len(s.Features))
	for i, ft := range s.Features {
		exprs[i] = ondemand.Expr{Name: ft.Name, Kind: ft.Type.Kind(), Source: ft.Expr}
	}
	p, err := ondemand.Compile(celVars(vars), exprs)
	if err != nil {
		return nil, nil, fmt.Errorf("on-demand set %q: %w", name, err)
	}
	return p, vars, nil
}

// resolveStored resolves a source reference, preferring a feature set or
// service to an on-demand set of the same name (a duplicate reported apart).
func (f *Features) resolveStored(ref string) ([]ResolvedFeature, error) {
	return f.resolve(ref, true, false)
}

func celVars(vars []OnDemandVar) []ondemand.Var {
	out := make([]ondemand.Var, len(vars))
	for i, v := range vars {
		out[i] = ondemand.Var{Name: v.Name, Kind: v.Type.Kind()}
	}
	return out
}

func (d *nodeDecoder) onDemandSet(n ast.Node) *OnDemandSet {
	s := &OnDemandSet{}
	lines, _ := d.mapping(n, "on-demand set", map[string]func(ast.Node){
		"name":    func(v ast.Node) { s.Name = d.str(v, "on-demand set name") },
		"sources": func(v ast.Node) { s.Sources = d.strs(v, "on-demand set sources") },
		"request": func(v ast.Node) { s.Request = d.requestFields(v) },
		"features": func(v ast.Node) {
			d.seq(v, "on-demand features", func(n ast.Node) { s.Features = append(s.Features, d.feature(n, "on-demand feature")) })
		},
		"description": func(v ast.Node) { s.Description = d.str(v, "on-demand set description") },
	})
	s.Pos = d.pos(n, lines)
	return s
}

// requestFields decodes {name: type, ...} in order.
func (d *nodeDecoder) requestFields(n ast.Node) []RequestField {
	if isNull(n) {
		return nil
	}
	mn, ok := unwrap(n).(ast.MapNode)
	if !ok {
		d.add(n, "on-demand set request: got %s, expected a mapping of value names to types ({budget: float64})", describe(n))
		return nil
	}
	var out []RequestField
	it := mn.MapRange()
	for it.Next() {
		out = append(out, RequestField{Name: scalarText(it.Key()), Type: Type(d.str(it.Value(), "on-demand set request type"))})
	}
	return out
}

// onDemandSet validates an on-demand set: its sources, request values and
// features, and compiles every expression (a CEL error is a problem at the
// expression's line).
func (v *validator) onDemandSet(s *OnDemandSet) {
	ps := v.ps
	if len(s.Sources) == 0 && len(s.Request) == 0 {
		ps.Add(s.File, s.Line, "on-demand set %q: no sources and no request values, expected sources: [feature sets or services] and/or request: {name: type}", s.Name)
	}
	vars, problems := v.f.onDemandVars(s)
	for _, p := range problems {
		add := ps.Add
		if strings.Contains(p, "unknown feature set") {
			add = ps.addDangling
		}
		add(s.File, s.At("sources"), "on-demand set %q: %s", s.Name, p)
	}
	for _, rf := range s.Request {
		v.ident(s.File, s.At("request"), "on-demand set "+s.Name+" request value", rf.Name)
		if !rf.Type.Valid() {
			ps.Add(s.File, s.At("request"), "on-demand set %q: request value %q: unknown type %q, expected one of %s", s.Name, rf.Name, rf.Type, typeList())
		}
	}
	if len(s.Features) == 0 {
		ps.Add(s.File, s.At("features"), "on-demand set %q: no features, expected at least one", s.Name)
	}
	names := map[string]bool{}
	celOK := len(problems) == 0
	var exprs []ondemand.Expr
	var compiled []*Feature // compiled[i] is the feature of exprs[i]
	for _, ft := range s.Features {
		v.name(ft.Pos, "on-demand feature", ft.Name)
		if names[ft.Name] {
			ps.Add(ft.File, ft.At("name"), "on-demand set %q: feature %q is defined twice, expected unique names", s.Name, ft.Name)
		}
		names[ft.Name] = true
		switch {
		case ft.Type == "":
			ps.Add(ft.File, ft.Line, "on-demand set %q: feature %q has no type, expected one of %s", s.Name, ft.Name, typeList())
		case !ft.Type.Valid():
			ps.Add(ft.File, ft.At("type"), "on-demand set %q: feature %q: unknown type %q, expected one of %s", s.Name, ft.Name, ft.Type, typeList())
		}
		if len(ft.Checks) > 0 {
			ps.Add(ft.File, ft.At("checks"), "on-demand set %q: feature %q has checks, expected none (checks run on stored feature sets)", s.Name, ft.Name)
		}
		if ft.Expr == "" {
			ps.Add(ft.File, ft.Line, "on-demand set %q: feature %q has no expr, expected a CEL expression over the sources' features and request values", s.Name, ft.Name)
			continue
		}
		for _, rf := range s.Request {
			if !rf.Type.Valid() {
				celOK = false
			}
		}
		if !celOK || !ft.Type.Valid() {
			continue // the variables or the type are wrong: CEL would only repeat it
		}
		exprs = append(exprs, ondemand.Expr{Name: ft.Name, Kind: ft.Type.Kind(), Source: ft.Expr})
		compiled = append(compiled, ft)
	}
	if len(exprs) == 0 {
		return
	}
	// One compilation (one CEL environment) for the set: every bad
	// expression is a CompileError naming its index.
	_, err := ondemand.Compile(celVars(vars), exprs)
	if err == nil {
		return
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		var ce *ondemand.CompileError
		if errors.As(e, &ce) {
			ft := compiled[ce.Index]
			ps.Add(ft.File, ft.At("expr"), "on-demand set %q: feature %q: expr: %s", s.Name, ft.Name, ce.Msg)
		} else {
			ps.Add(s.File, s.Line, "on-demand set %q: %v", s.Name, e)
		}
	}
}
