package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// onDemandBase declares two sets the on-demand sets of the tests read.
const onDemandBase = `entities:
  - {name: listing, join_keys: [listing_id]}
  - {name: user, join_keys: [user_id]}
sources:
  - {name: listings, format: csv, path: l.csv, timestamp: ts}
  - {name: users, format: csv, path: u.csv, timestamp: ts}
feature_sets:
  - name: listing_profile
    entity: listing
    source: listings
    features:
      - {name: rent, type: float64, expr: rent}
      - {name: neighborhood, type: string, expr: neighborhood}
  - name: user_profile
    entity: user
    source: users
    features:
      - {name: budget, type: float64, expr: budget}
      - {name: preferred_neighborhoods, type: string, expr: preferred}
      - {name: neighborhood, type: string, expr: home}
`

func TestOnDemandValid(t *testing.T) {
	yaml := onDemandBase + `on_demand_features:
  - name: user_listing
    sources: ["user_profile:budget", "user_profile:preferred_neighborhoods", listing_profile]
    request: {budget_override: float64, channel: string}
    features:
      - {name: rent_to_budget, type: float64, expr: "rent / (budget_override != null ? budget_override : budget)"}
      - {name: neighborhood_match, type: int64, expr: "neighborhood in preferred_neighborhoods.split('|') ? 1 : 0"}
feature_services:
  - {name: ranker, features: ["listing_profile:rent", "user_listing:rent_to_budget", user_listing]}
`
	f, err := ParseFeatures("f.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.ResolveService("ranker")
	if err != nil {
		t.Fatal(err)
	}
	refs := refsOf(got)
	if want := []string{"listing_profile:rent", "user_listing:rent_to_budget", "user_listing:neighborhood_match"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("ranker = %v, want %v", refs, want)
	}
	stored, od := SplitOnDemand(got)
	if len(stored) != 1 || len(od) != 2 || !od[1].OnDemand || od[1].Type != Int64 || od[1].Set != "user_listing" {
		t.Errorf("SplitOnDemand = %+v, %+v", stored, od)
	}
	p, vars, err := f.CompileOnDemand("user_listing")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vars {
		from := "request"
		if v.Feature != nil {
			from = v.Feature.Ref
		}
		names = append(names, v.Name+"="+from)
	}
	want := []string{"budget=user_profile:budget", "preferred_neighborhoods=user_profile:preferred_neighborhoods",
		"rent=listing_profile:rent", "neighborhood=listing_profile:neighborhood", "budget_override=request", "channel=request"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("vars = %v, want %v", names, want)
	}
	if len(p.Exprs()) != 2 || len(p.Vars()) != 6 {
		t.Errorf("program has %d exprs over %d vars", len(p.Exprs()), len(p.Vars()))
	}
}

func TestOnDemandProblems(t *testing.T) {
	set := func(body string) string { return onDemandBase + "on_demand_features:\n" + body }
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"bad expression", set(`  - name: x
    sources: [listing_profile]
    features:
      - {name: a, type: float64, expr: "rent / "}
`), []string{`f.yaml:25: on-demand set "x": feature "a": expr: column 8: Syntax error`}},
		{"unknown variable", set(`  - name: x
    sources: [listing_profile]
    features:
      - name: a
        type: float64
        expr: "rent / budget"
`), []string{`f.yaml:27: on-demand set "x": feature "a": expr: column 8: undeclared reference to 'budget'`}},
		{"type mismatch", set(`  - name: x
    sources: [listing_profile]
    features:
      - {name: a, type: int64, expr: "rent * 2.0"}
      - {name: b, type: float64, expr: "rent > 1.0 ? 1 : 0"}
`), []string{`f.yaml:25: on-demand set "x": feature "a": expr: type mismatch: the expression is double, expected int`,
			`f.yaml:26: on-demand set "x": feature "b": expr: type mismatch: the expression is int, expected double (type float64) (write 1.0`}},
		{"duplicate names", set(`  - name: x
    sources: [listing_profile]
    features:
      - {name: a, type: float64, expr: rent}
      - {name: a, type: float64, expr: rent}
  - name: listing_profile
    sources: [listing_profile]
    features:
      - {name: b, type: float64, expr: rent}
`), []string{`f.yaml:26: on-demand set "x": feature "a" is defined twice`, `f.yaml:27: duplicate feature set or service name "listing_profile"`}},
		{"unknown source and ambiguous name", set(`  - name: x
    sources: [listing_profil, listing_profile, user_profile]
    features:
      - {name: a, type: float64, expr: rent}
`), []string{`f.yaml:23: on-demand set "x": source "listing_profil": unknown feature set or service "listing_profil"`,
			`f.yaml:23: on-demand set "x": "neighborhood" is both listing_profile:neighborhood and user_profile:neighborhood`}},
		{"bad request values and types", set(`  - name: x
    request: {amount: decimal, 9x: int64}
    features:
      - {name: a, type: float, expr: "1.0"}
      - {name: b, type: float64}
`), []string{`f.yaml:23: on-demand set "x": request value "amount": unknown type "decimal"`, `f.yaml:23: on-demand set x request value "9x": expected an identifier`,
			`f.yaml:25: on-demand set "x": feature "a": unknown type "float"`, `f.yaml:26: on-demand set "x": feature "b" has no expr`}},
		{"request value shadows a feature", set(`  - name: x
    sources: [listing_profile]
    request: {rent: float64}
    features:
      - {name: a, type: float64, expr: rent}
`), []string{`"rent" is both listing_profile:rent and request value rent`}},
		{"a service names an unknown on-demand feature", set(`  - name: x
    sources: [listing_profile]
    features:
      - {name: a, type: float64, expr: rent}
feature_services:
  - {name: s, features: ["x:b"]}
`), []string{`f.yaml:27: feature service "s": reference "x:b": unknown feature "b" in on-demand set "x", expected one of: a`}},
		{"on-demand source", set(`  - name: x
    sources: [listing_profile]
    features:
      - {name: a, type: float64, expr: rent}
  - name: y
    sources: [x]
    features:
      - {name: b, type: float64, expr: a}
`), []string{`on-demand set "y": source "x" is an on-demand set, expected a feature set or service`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFeatures("f.yaml", []byte(tc.yaml))
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error = %v, want Problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems:\n%s\nwant one containing %q", err, w)
				}
			}
			if len(ps) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%s", len(ps), len(tc.want), err)
			}
		})
	}
}
