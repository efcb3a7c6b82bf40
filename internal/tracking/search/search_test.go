package search

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

func TestParseRunsValid(t *testing.T) {
	tests := []struct {
		filter string
		want   []string // Clause.String() of each clause
	}{
		{"", nil},
		{"   ", nil},
		{"metrics.rmse < 1", []string{`metric.rmse < 1`}},
		{"metrics.rmse < 1 and params.model = 'LR'", []string{`metric.rmse < 1`, `parameter.model = "LR"`}},
		{"metric.acc >= 0.9 AND param.depth != '3'", []string{`metric.acc >= 0.9`, `parameter.depth != "3"`}},
		{`tags."user-name" = 'x'`, []string{`tag.user-name = "x"`}},
		{"tags.`a b` = 'x'", []string{`tag.a b = "x"`}},
		{`params.a = "x"`, []string{`parameter.a = "x"`}},
		{`metrics."a.b" > -1.5e3`, []string{`metric.a.b > -1500`}},
		{"metrics.a.b = 2", []string{`metric.a.b = 2`}},
		{"attributes.run_id IN ('a','b')", []string{`attribute.run_id IN ["a" "b"]`}},
		{"attribute.run_id NOT IN ('a', 'b',)", []string{`attribute.run_id NOT IN ["a" "b"]`}},
		{"run_name = 'x'", []string{`attribute.run_name = "x"`}},
		{`attr."run name" = 'x'`, []string{`attribute.run_name = "x"`}},
		{"created > 5", []string{`attribute.start_time > 5`}},
		{"attributes.status = 'FINISHED'", []string{`attribute.status = "FINISHED"`}},
		{"params.a IS NULL", []string{`parameter.a IS NULL`}},
		{"tags.t is not null", []string{`tag.t IS NOT NULL`}},
		{"params.x LIKE '%a%'", []string{`parameter.x LIKE "%a%"`}},
		{"tags.x != 'a' and tags.y ILIKE 'b%'", []string{`tag.x != "a"`, `tag.y ILIKE "b%"`}},
		{"dataset.name = 'x'", []string{`dataset.name = "x"`}},
		{"datasets.context IN ('train')", []string{`dataset.context IN ["train"]`}},
		{"metric.x >= 1 AND", []string{`metric.x >= 1`}},
		{"params.q = 'it''s'", []string{`parameter.q = "it's"`}},
		{"metrics.m == 3", []string{`metric.m = 3`}},
		{"run.user_id = 'me'", []string{`attribute.user_id = "me"`}},
		{"params.k = '; DROP TABLE runs; --'", []string{`parameter.k = "; DROP TABLE runs; --"`}},
	}
	for _, tt := range tests {
		got, err := Parse(Runs, tt.filter)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.filter, err)
			continue
		}
		var gs []string
		for _, c := range got {
			gs = append(gs, c.String())
		}
		if strings.Join(gs, " | ") != strings.Join(tt.want, " | ") {
			t.Errorf("Parse(%q) = %q, want %q", tt.filter, gs, tt.want)
		}
	}
}

func TestParseRunsInvalid(t *testing.T) {
	tests := []struct{ filter, msg string }{
		{"metrics.rmse", "Invalid clause(s) in filter string: 'metrics.rmse'"},
		{"metrics.rmse < 'a'", "Expected numeric value type for metric. Found 'a'"},
		{"params.x > '1'", "Invalid comparator '>' not one of '{'!=', '=', 'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE'}'"},
		{"foo.bar = 1", "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"},
		{"attributes.foo = 1", "Invalid attribute key 'foo' specified."},
		{"metrics.a < 1 or metrics.b > 2", "Invalid clause(s) in filter string: 'or'"},
		{"params.a = x", "Parameter value is either not quoted or unidentified quote types used for string value x. Use either single or double quotes."},
		{"metrics.a < 1; drop table runs", "Search filter contained multiple expression 'metrics.a < 1; drop table runs'. Provide AND-ed expression list."},
		{"attributes.start_time > '1'", "Expected numeric value type for numeric attribute: start_time. Found '1'"},
		{"metrics.a IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'a'"},
		{"attributes.status IN ('FINISHED')", "Only ['run_id'] attributes support comparison with a list of quoted string values."},
		{"attributes.run_id IN ()", "expected a non-empty list of string values, but got empty list"},
		{"attributes.run_id IN ('a' 'b')", "ill-formed list"},
		{"attributes.run_id IN (1, 2)", "expected string value, punctuation, or whitespace"},
		{"params.a = 'unterminated", "unterminated quote"},
		{"metrics.a < 1 and (metrics.b > 2)", "Invalid clause(s) in filter string: '(metrics.b > 2)'"},
		{"metrics.a > 1 metrics.b < 2", "Invalid clause(s) in filter string: 'metrics.b < 2'"},
		{"params.a ~ 'x'", "Could not be parsed"},
		{"metrics.a BETWEEN 1", "Invalid comparison clause. Expected comparison found 'BETWEEN'"},
		{"params.a IS 'x'", "Expected 'NULL' after IS"},
		{"metrics.a <", "Expected 3 tokens found 2"},
		{"datasets.size = 'x'", "Invalid dataset key 'size' specified."},
		{"status LIKE", "Expected 3 tokens found 2"},
		{"params. = 'x'", "the key after 'params.' is empty"},
		{"tags.x = 'a' AND tags.y = 1", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 1"},
	}
	for _, tt := range tests {
		_, err := Parse(Runs, tt.filter)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error containing %q", tt.filter, tt.msg)
			continue
		}
		if !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("Parse(%q) error %v is not INVALID_PARAMETER_VALUE", tt.filter, err)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.filter, err, tt.msg)
		}
	}
}

func TestParseOtherGrammars(t *testing.T) {
	ok := []struct {
		g      *Grammar
		filter string
	}{
		{Experiments, "name = 'x' and tags.team LIKE 'a%'"},
		{Experiments, "creation_time > 100 and experiment_id IN ('1', '2')"},
		{Experiments, "tags.t IS NULL"},
		{RegisteredModels, "name ILIKE '%fraud%' and tags.owner = 'me'"},
		{RegisteredModels, "name IN ('a', 'b')"},
		{ModelVersions, "name = 'm' and run_id IN ('r1') and version_number > 2"},
		{ModelVersions, "source_path = 'runs:/x/model' and tags.t != 'a'"},
		{LoggedModels, "metrics.acc > 0.5 and params.alpha = '0.1' and name = 'model'"},
	}
	for _, tt := range ok {
		if _, err := Parse(tt.g, tt.filter); err != nil {
			t.Errorf("Parse(%q): %v", tt.filter, err)
		}
	}
	bad := []struct {
		g           *Grammar
		filter, msg string
	}{
		{Experiments, "metrics.a > 1", "Invalid entity type 'metrics'. Valid values are ['attribute', 'tag', 'tags']"},
		{Experiments, "name IN ('a')", "Only ['experiment_id'] attributes support comparison"},
		{RegisteredModels, "creation_timestamp > 1", "Invalid attribute key 'creation_timestamp' specified."},
		{RegisteredModels, "tags.t IS NULL", "IS NULL / IS NOT NULL is only supported"},
		{ModelVersions, "name = 3", "Only the '{'version_number'}' attributes support comparison with numeric values."},
		{ModelVersions, "version_number = 'x'", "Expected numeric value type for numeric attribute: version_number"},
	}
	for _, tt := range bad {
		_, err := Parse(tt.g, tt.filter)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", tt.filter, err, tt.msg)
		}
	}
}

func TestParseOrderBy(t *testing.T) {
	ok := []struct {
		g    *Grammar
		in   string
		want OrderBy
	}{
		{Runs, "metrics.rmse DESC", OrderBy{Metric, "rmse", false}},
		{Runs, "metrics.`a b` asc", OrderBy{Metric, "a b", true}},
		{Runs, "attributes.start_time", OrderBy{Attribute, "start_time", true}},
		{Runs, "start_time DESC", OrderBy{Attribute, "start_time", false}},
		{Runs, "created", OrderBy{Attribute, "start_time", true}},
		{Runs, `params."lr"`, OrderBy{Param, "lr", true}},
		{Runs, "tags.t desc", OrderBy{Tag, "t", false}},
		{Experiments, "name", OrderBy{Attribute, "name", true}},
		{Experiments, "last_update_time DESC", OrderBy{Attribute, "last_update_time", false}},
		{RegisteredModels, "timestamp DESC", OrderBy{Attribute, "timestamp", false}},
		{ModelVersions, "version_number", OrderBy{Attribute, "version_number", true}},
	}
	for _, tt := range ok {
		got, err := ParseOrderBy(tt.g, tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseOrderBy(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct {
		g       *Grammar
		in, msg string
	}{
		{Runs, "metrics.rmse DESC extra", "Could not be parsed"},
		{Runs, "metrics.rmse DOWN", "Invalid ordering key in order_by clause 'metrics.rmse DOWN'."},
		{Runs, "dataset.name", "Invalid order_by entity type"},
		{Runs, "", "Could not be parsed"},
		{Runs, "foo.bar", "Invalid entity type 'foo'"},
		{Experiments, "tags.t", "Invalid order_by entity type"},
		{RegisteredModels, "description", "Invalid attribute key 'description'"},
	}
	for _, tt := range bad {
		_, err := ParseOrderBy(tt.g, tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseOrderBy(%q) error = %v, want it to contain %q", tt.in, err, tt.msg)
		}
	}
}

// FuzzParse: no filter string makes the parser panic, and every accepted clause
// names an entity and an operator of the grammar.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"metrics.rmse < 1 and params.model = 'LR'", `tags."a b" != 'x'`, "attributes.run_id IN ('a','b',)",
		"params.a IS NOT NULL", "datasets.context = 'train'", "x = ", "'", "`", `"`, "((", "a.b.c = -1e9",
		"metrics.m = 1; drop", "and and", "IN ()", "run_id NOT IN ('a')", "\x00", "é.ü = 'ß'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		for _, g := range []*Grammar{Runs, Experiments, RegisteredModels, ModelVersions, LoggedModels} {
			clauses, err := Parse(g, filter)
			if err != nil {
				continue
			}
			for _, c := range clauses {
				kind := c.Entity
				if kind == Attribute && contains(g.NumericAttributes, c.Key) {
					kind = NumericAttribute
				}
				if !contains(g.Comparators[kind], c.Op) {
					t.Fatalf("Parse(%q) accepted %v: operator %s not in the grammar", filter, c, c.Op)
				}
			}
			_, _ = ParseOrderBy(g, filter)
		}
	})
}

// TestParseLimits checks the bounds that keep a filter within what the SQL
// engines accept: past them the engine's error would be a 500 the client retries.
func TestParseLimits(t *testing.T) {
	clauses := func(n int) string {
		cs := make([]string, n)
		for i := range cs {
			cs[i] = fmt.Sprintf("metrics.m%d > 0", i)
		}
		return strings.Join(cs, " and ")
	}
	list := func(n int) string {
		vs := make([]string, n)
		for i := range vs {
			vs[i] = fmt.Sprintf("'%d'", i)
		}
		return "attributes.run_id IN (" + strings.Join(vs, ",") + ")"
	}
	tests := []struct {
		name, filter string
		msg          string // "" when the filter must parse
	}{
		{"clauses at the limit", clauses(MaxClauses), ""},
		{"one clause too many", clauses(MaxClauses + 1), "at most 200 conditions; this one has more than 200"},
		{"2000 clauses", clauses(2000), "at most 200 conditions; this one has more than 200"},
		{"one list at the limit", list(MaxListValues), ""},
		{"one list over the limit", list(MaxListValues + 1), "got more than 10000 values"},
		{"lists at the limit together", list(MaxListValues/2) + " and " + list(MaxListValues/2), ""},
		{"lists over the limit together", list(MaxListValues/2) + " and " + list(MaxListValues/2+1), "got more than 10000 values"},
		{"five lists of 9000", strings.Repeat(list(9000)+" and ", 4) + list(9000), "got more than 10000 values"},
	}
	// The API's searches take as many conditions as the parser.
	cs, err := Parse(Runs, clauses(MaxRequestClauses))
	if err == nil {
		err = CheckRequestClauses(cs)
	}
	if err != nil {
		t.Errorf("CheckRequestClauses of %d conditions: %v", MaxRequestClauses, err)
	}
	if err := CheckRequestClauses(append(cs, cs[0])); err == nil || !strings.Contains(err.Error(), "at most 200 conditions; this one has 201") {
		t.Errorf("CheckRequestClauses of %d conditions: %v", MaxRequestClauses+1, err)
	}
	for _, tt := range tests {
		_, err := Parse(Runs, tt.filter)
		switch {
		case tt.msg == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.msg != "" && (!errors.Is(err, wire.ErrInvalid) || !strings.Contains(err.Error(), tt.msg)):
			t.Errorf("%s: err = %.200v, want INVALID_PARAMETER_VALUE containing %q", tt.name, err, tt.msg)
		}
	}
}
