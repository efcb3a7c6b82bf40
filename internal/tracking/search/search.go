// Package search parses MLflow's search filter and order-by strings into typed
// clauses. It is a real parser: the string is tokenized and checked against a
// Grammar (which entities, attribute keys, comparators and value types a search
// accepts), and callers turn the clauses into SQL with bound parameters, so no
// part of a filter is ever pasted into a query.
//
// The language is the one MLflow documents: conditions joined by AND only,
// each `<entity>.<key> <comparator> <value>`, e.g.
//
//	metrics.rmse < 1 and params.model = 'LR' and tags."user-name" = 'x'
//	attributes.run_id IN ('a', 'b') and params.alpha IS NOT NULL
//
// Keys may be bare words (letters, digits, _ . : / -) or quoted with ", ` or '.
// Error messages follow MLflow's wording so clients see the same text.
package search

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Entity kinds a clause can name (MLflow's canonical identifiers).
const (
	Metric    = "metric"
	Param     = "parameter"
	Tag       = "tag"
	Attribute = "attribute"
	Dataset   = "dataset"
)

// Clause is one condition of a filter.
type Clause struct {
	Entity string // Metric, Param, Tag, Attribute or Dataset
	Key    string // unquoted, aliases resolved (created -> start_time)
	Op     string // = != < <= > >= LIKE ILIKE IN "NOT IN" "IS NULL" "IS NOT NULL"
	// Exactly one of the value fields is meaningful, by Op and entity:
	Str   string   // quoted string value
	Num   float64  // numeric value (metrics, numeric attributes)
	Int   bool     // Num was written as an integer
	List  []string // IN / NOT IN
	IsNum bool
}

// Grammar says what a search accepts. The variables below are MLflow's searches.
type Grammar struct {
	// Entities maps every accepted prefix (and its aliases) to its entity kind.
	Entities map[string]string
	// EntityNames lists the canonical prefixes, for error messages.
	EntityNames []string
	// Attributes are the valid attribute keys; NumericAttributes those compared as numbers.
	Attributes        []string
	NumericAttributes []string
	// Aliases maps alternative attribute keys to the canonical key.
	Aliases map[string]string
	// ListKeys are the attribute keys that accept IN / NOT IN lists.
	ListKeys []string
	// Comparators per entity kind; string attributes use Attribute, numeric ones NumericAttribute.
	Comparators map[string][]string
	// DatasetKeys are the valid keys after "dataset.".
	DatasetKeys []string
	// OrderAttributes are the attribute keys order_by accepts (default: Attributes).
	OrderAttributes []string
	// OrderEntities are the entity kinds order_by accepts (default: all but Dataset).
	OrderEntities []string
}

// NumericAttribute is the Comparators key for numeric attributes.
const NumericAttribute = "numeric attribute"

var (
	numericOps = []string{"=", "!=", ">", ">=", "<", "<="}
	stringOps  = []string{"=", "!=", "LIKE", "ILIKE"}
)

// Runs is search_runs' grammar.
var Runs = &Grammar{
	Entities: map[string]string{
		"metric": Metric, "metrics": Metric,
		"parameter": Param, "parameters": Param, "param": Param, "params": Param,
		"tag": Tag, "tags": Tag,
		"attribute": Attribute, "attributes": Attribute, "attr": Attribute, "run": Attribute,
		"dataset": Dataset, "datasets": Dataset,
	},
	EntityNames:       []string{"metric", "parameter", "tag", "attribute", "dataset"},
	Attributes:        []string{"artifact_uri", "end_time", "run_id", "run_name", "start_time", "status", "user_id"},
	NumericAttributes: []string{"start_time", "end_time"},
	Aliases:           map[string]string{"created": "start_time", "Created": "start_time", "run name": "run_name", "Run name": "run_name", "Run Name": "run_name"},
	ListKeys:          []string{"run_id"},
	Comparators: map[string][]string{
		Metric:           numericOps,
		Param:            append(append([]string{}, stringOps...), "IS NULL", "IS NOT NULL"),
		Tag:              append(append([]string{}, stringOps...), "IS NULL", "IS NOT NULL"),
		Attribute:        append(append([]string{}, stringOps...), "IN", "NOT IN"),
		NumericAttribute: numericOps,
		Dataset:          append(append([]string{}, stringOps...), "IN", "NOT IN"),
	},
	DatasetKeys: []string{"name", "digest", "context"},
}

// Experiments is search_experiments' grammar.
var Experiments = &Grammar{
	Entities:          map[string]string{"attribute": Attribute, "tag": Tag, "tags": Tag},
	EntityNames:       []string{"attribute", "tag", "tags"},
	Attributes:        []string{"creation_time", "experiment_id", "last_update_time", "name"},
	NumericAttributes: []string{"creation_time", "last_update_time"},
	ListKeys:          []string{"experiment_id"},
	Comparators: map[string][]string{
		Tag:              append(append([]string{}, stringOps...), "IS NULL", "IS NOT NULL"),
		Attribute:        append(append([]string{}, stringOps...), "IN", "NOT IN"),
		NumericAttribute: numericOps,
	},
	OrderEntities: []string{Attribute},
}

// RegisteredModels is search_registered_models' grammar.
var RegisteredModels = &Grammar{
	Entities:          map[string]string{"attribute": Attribute, "tag": Tag, "tags": Tag},
	EntityNames:       []string{"attribute", "tag", "tags"},
	Attributes:        []string{"name"},
	ListKeys:          []string{"name"},
	Comparators:       map[string][]string{Tag: stringOps, Attribute: append(append([]string{}, stringOps...), "IN", "NOT IN")},
	OrderAttributes:   []string{"name", "creation_timestamp", "last_updated_timestamp", "timestamp"},
	OrderEntities:     []string{Attribute},
	NumericAttributes: nil,
}

// ModelVersions is search_model_versions' grammar.
var ModelVersions = &Grammar{
	Entities:          map[string]string{"attribute": Attribute, "tag": Tag, "tags": Tag},
	EntityNames:       []string{"attribute", "tag", "tags"},
	Attributes:        []string{"name", "run_id", "source_path", "version_number"},
	NumericAttributes: []string{"version_number"},
	ListKeys:          []string{"name", "run_id"},
	Comparators: map[string][]string{
		Tag:              stringOps,
		Attribute:        append(append([]string{}, stringOps...), "IN", "NOT IN"),
		NumericAttribute: numericOps,
	},
	OrderAttributes: []string{"name", "version_number", "creation_timestamp", "last_updated_timestamp"},
	OrderEntities:   []string{Attribute},
}

// LoggedModels is search_logged_models' grammar.
var LoggedModels = &Grammar{
	Entities: map[string]string{
		"metric": Metric, "metrics": Metric,
		"parameter": Param, "parameters": Param, "param": Param, "params": Param,
		"tag": Tag, "tags": Tag,
		"attribute": Attribute, "attributes": Attribute, "attr": Attribute,
	},
	EntityNames:       []string{"metric", "parameter", "tag", "attribute"},
	Attributes:        []string{"creation_time", "creation_timestamp", "last_updated_timestamp", "model_id", "model_type", "name", "source_run_id", "status"},
	NumericAttributes: []string{"creation_time", "creation_timestamp", "last_updated_timestamp"},
	Aliases:           map[string]string{"creation_time": "creation_timestamp"},
	ListKeys:          []string{"model_id", "name", "source_run_id", "status"},
	Comparators: map[string][]string{
		Metric:           numericOps,
		Param:            stringOps,
		Tag:              stringOps,
		Attribute:        append(append([]string{}, stringOps...), "IN", "NOT IN"),
		NumericAttribute: numericOps,
	},
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pySet renders keys the way MLflow's messages print a Python set.
func pySet(keys []string) string {
	s := append([]string(nil), keys...)
	sort.Strings(s)
	q := make([]string, len(s))
	for i, k := range s {
		q[i] = "'" + k + "'"
	}
	return "{" + strings.Join(q, ", ") + "}"
}

func pyList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (g *Grammar) attributeKeys() []string {
	keys := append([]string(nil), g.Attributes...)
	for a := range g.Aliases {
		if !contains(keys, a) {
			keys = append(keys, a)
		}
	}
	return keys
}

// Parse parses a filter string. An empty (or blank) filter has no clauses.
func Parse(g *Grammar, filter string) ([]Clause, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	toks, err := lex(filter)
	if err != nil {
		return nil, err
	}
	p := &parser{g: g, toks: toks, src: filter}
	return p.filter()
}

type parser struct {
	g      *Grammar
	toks   []token
	pos    int
	src    string
	values int // list values read so far, over every list of the filter
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{kind: tEOF}
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) filter() ([]Clause, error) {
	var out []Clause
	for {
		t := p.peek()
		if t.kind == tEOF {
			break
		}
		if t.kind == tSemicolon {
			return nil, wire.Invalidf("Search filter contained multiple expression %s. Provide AND-ed expression list.", pyRepr(p.src))
		}
		if t.kind != tIdent {
			return nil, p.invalidClause()
		}
		c, err := p.clause()
		if err != nil {
			return nil, err
		}
		if len(out) == MaxClauses {
			return nil, wire.Invalidf("A search filter may hold at most %d conditions; this one has more than %d.", MaxClauses, MaxClauses)
		}
		out = append(out, c)
		switch t := p.peek(); {
		case t.kind == tEOF:
		case t.kind == tKeyword && t.text == "AND":
			p.next()
		case t.kind == tSemicolon:
			return nil, wire.Invalidf("Search filter contained multiple expression %s. Provide AND-ed expression list.", pyRepr(p.src))
		default:
			return nil, p.invalidClause()
		}
	}
	return out, nil
}

// invalidClause reports the rest of the filter from the current token on.
func (p *parser) invalidClause() error {
	t := p.peek()
	if t.kind == tKeyword {
		return wire.Invalidf("Invalid clause(s) in filter string: '%s'", t.raw)
	}
	return wire.Invalidf("Invalid clause(s) in filter string: '%s'", strings.TrimSpace(p.src[t.pos:]))
}

func (p *parser) clause() (Clause, error) {
	id := p.next()
	c := Clause{}
	entity, key, err := p.g.identifier(id)
	if err != nil {
		return c, err
	}
	c.Entity, c.Key = entity, key

	op := p.next()
	switch {
	case op.kind == tOp:
		c.Op = op.text
	case op.kind == tKeyword && (op.text == "LIKE" || op.text == "ILIKE" || op.text == "IN"):
		c.Op = op.text
	case op.kind == tKeyword && op.text == "NOT":
		if in := p.next(); in.kind != tKeyword || in.text != "IN" {
			return c, wire.Invalidf("Invalid comparison clause. Expected comparison found '%s'", op.raw)
		}
		c.Op = "NOT IN"
	case op.kind == tKeyword && op.text == "IS":
		n := p.next()
		if n.kind == tKeyword && n.text == "NOT" {
			n = p.next()
			c.Op = "IS NOT NULL"
		} else {
			c.Op = "IS NULL"
		}
		if n.kind != tKeyword || n.text != "NULL" {
			return c, wire.Invalidf("Invalid comparison clause. Expected 'NULL' after IS, found '%s'", n.raw)
		}
	case op.kind == tEOF:
		return c, wire.Invalidf("Invalid clause(s) in filter string: '%s'", id.raw)
	default:
		return c, wire.Invalidf("Invalid comparison clause. Expected comparison found '%s'", op.raw)
	}
	if err := p.g.checkComparator(c); err != nil {
		return c, err
	}
	if c.Op == "IS NULL" || c.Op == "IS NOT NULL" {
		return c, nil
	}
	return c, p.value(&c)
}

// identifier resolves an identifier token to entity kind and key.
func (g *Grammar) identifier(id token) (entity, key string, err error) {
	prefix, key, dotted := id.prefix, id.key, id.prefix != ""
	if !dotted {
		entity = Attribute
	} else {
		prefix = strings.Trim(prefix, "`")
		e, ok := g.Entities[prefix]
		if !ok {
			return "", "", wire.Invalidf("Invalid entity type '%s'. Valid values are %s", prefix, wire.Prose(pyList(g.EntityNames)))
		}
		entity = e
	}
	switch entity {
	case Attribute:
		if !contains(g.Attributes, key) {
			if _, ok := g.Aliases[key]; !ok {
				return "", "", wire.Invalidf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pySet(g.attributeKeys()))
			}
		}
		if canon, ok := g.Aliases[key]; ok {
			key = canon
		}
	case Dataset:
		if !contains(g.DatasetKeys, key) {
			return "", "", wire.Invalidf("Invalid dataset key '%s' specified. Valid keys are '%s'", key, pySet(g.DatasetKeys))
		}
	}
	if key == "" {
		return "", "", wire.Invalidf("Invalid identifier '%s': the key after '%s.' is empty", id.raw, prefix)
	}
	return entity, key, nil
}

func (g *Grammar) isNumericAttr(key string) bool { return contains(g.NumericAttributes, key) }

func (g *Grammar) checkComparator(c Clause) error {
	kind := c.Entity
	if kind == Attribute && g.isNumericAttr(c.Key) {
		kind = NumericAttribute
	}
	if c.Op == "IS NULL" || c.Op == "IS NOT NULL" {
		if !contains(g.Comparators[kind], c.Op) {
			return wire.Invalidf("IS NULL / IS NOT NULL is only supported for tags and params, not for '%s' '%s'", c.Entity, c.Key)
		}
		return nil
	}
	ops := g.Comparators[kind]
	if !contains(ops, c.Op) {
		return wire.Invalidf("Invalid comparator '%s' not one of '%s'", c.Op, pySet(ops))
	}
	return nil
}

func (p *parser) value(c *Clause) error {
	v := p.next()
	numeric := c.Entity == Metric || (c.Entity == Attribute && p.g.isNumericAttr(c.Key))
	if c.Op == "IN" || c.Op == "NOT IN" {
		if v.kind != tLParen {
			return wire.Invalidf("Expected a list of quoted string values for %s '%s'. Got value %s", c.Entity, c.Key, v.raw)
		}
		if c.Entity == Attribute && !contains(p.g.ListKeys, c.Key) {
			return wire.Invalidf("Only %s attributes support comparison with a list of quoted string values.", wire.Prose(pyList(p.g.ListKeys)))
		}
		return p.list(c)
	}
	switch {
	case v.kind == tEOF:
		return wire.Invalidf("Invalid comparison clause. Expected 3 tokens found 2")
	case numeric:
		if v.kind != tNumber {
			if c.Entity == Metric {
				return wire.Invalidf("Expected numeric value type for metric. Found %s", v.raw)
			}
			return wire.Invalidf("Expected numeric value type for numeric attribute: %s. Found %s", c.Key, v.raw)
		}
		f, err := strconv.ParseFloat(v.text, 64)
		if err != nil {
			return wire.Invalidf("Expected numeric value type for %s. Found %s", c.Entity, v.raw)
		}
		c.Num, c.IsNum = f, true
		c.Int = !strings.ContainsAny(v.text, ".eE")
	case v.kind == tString:
		c.Str = v.text
	case v.kind == tIdent && v.quoted && v.prefix == "":
		c.Str = v.key
	case v.kind == tNumber && c.Entity == Attribute && p.g == ModelVersions:
		return wire.Invalidf("Only the '%s' attributes support comparison with numeric values.", pySet(p.g.NumericAttributes))
	case v.kind == tIdent && v.prefix == "" && !v.quoted:
		return wire.Invalidf("Parameter value is either not quoted or unidentified quote types used for string value %s. Use either single or double quotes.", v.raw)
	default:
		return wire.Invalidf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", c.Entity, v.raw)
	}
	return nil
}

// MaxListValues bounds the values of the IN lists of one filter, all lists
// together: every value is a bound SQL parameter, and the engines cap those
// (SQLite at 32,766, PostgreSQL at 65,535) per statement, which also holds up
// to MaxListValues experiment ids and the other conditions' values.
const MaxListValues = 10000

// MaxClauses bounds the conditions of one filter. Each becomes a SQL condition
// (on metrics, params and tags a subquery), and the engines refuse statements
// past their limits (SQLite: expressions deeper than 1,000) with an error that
// would otherwise be a 500, which the client retries. Real filters hold a few.
const MaxClauses = 200

func (p *parser) list(c *Clause) error {
	for {
		v := p.next()
		switch {
		case v.kind == tString && p.values == MaxListValues:
			return wire.Invalidf("While parsing a list in the query, got more than %d values (counting every list of the filter).", MaxListValues)
		case v.kind == tString:
			c.List = append(c.List, v.text)
			p.values++
		case v.kind == tRParen && len(c.List) == 0:
			return wire.Invalidf("While parsing a list in the query, expected a non-empty list of string values, but got empty list")
		default:
			return wire.Invalidf("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", v.raw)
		}
		switch sep := p.next(); sep.kind {
		case tComma:
			if p.peek().kind == tRParen { // trailing comma, as Python tuples allow
				p.next()
				return nil
			}
		case tRParen:
			return nil
		default:
			return wire.Invalidf("While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.")
		}
	}
}

// MaxRequestClauses bounds the conditions of a filter that the API's searches
// accept. It is MaxClauses: searches keep the conditions that PostgreSQL plans
// as joins to a few (Where.SQL, Where.AddKeyValues), so its planning time grows
// about linearly with their number (200 conditions of a runs search: 3 ms of
// planning, where 32 took 1.0 s and 100 over 3 GB of memory when each was a
// semi-join). CheckRequestClauses is kept for the searches that call it.
const MaxRequestClauses = MaxClauses

// CheckRequestClauses refuses a parsed filter of more than MaxRequestClauses
// conditions (Parse refuses more than MaxClauses already).
func CheckRequestClauses(clauses []Clause) error {
	if len(clauses) > MaxRequestClauses {
		return wire.Invalidf("A search filter may hold at most %d conditions; this one has %d.", MaxRequestClauses, len(clauses))
	}
	return nil
}

// OrderBy is one parsed order_by entry.
type OrderBy struct {
	Entity string
	Key    string
	Asc    bool
}

// ParseOrderBy parses an order_by entry such as "metrics.rmse DESC" or "name".
// Ascending is the default.
func ParseOrderBy(g *Grammar, s string) (OrderBy, error) {
	bad := func() (OrderBy, error) {
		return OrderBy{}, wire.Invalidf("Invalid order_by clause '%s'. Could not be parsed.", s)
	}
	toks, err := lex(s)
	if err != nil || len(toks) == 0 || len(toks) > 2 || toks[0].kind != tIdent {
		return bad()
	}
	ob := OrderBy{Asc: true}
	if len(toks) == 2 {
		switch {
		case toks[1].kind == tKeyword && toks[1].text == "ASC":
		case toks[1].kind == tKeyword && toks[1].text == "DESC":
			ob.Asc = false
		case toks[1].kind == tIdent && toks[1].prefix == "" && !toks[1].quoted:
			return OrderBy{}, wire.Invalidf("Invalid ordering key in order_by clause '%s'.", s)
		default:
			return bad()
		}
	}
	og := *g
	if g.OrderAttributes != nil {
		og.Attributes = g.OrderAttributes
	}
	entity, key, err := og.identifier(toks[0])
	if err != nil {
		return OrderBy{}, err
	}
	allowed := g.OrderEntities
	if allowed == nil {
		allowed = []string{Metric, Param, Tag, Attribute}
	}
	if !contains(allowed, entity) {
		return OrderBy{}, wire.Invalidf("Invalid order_by entity type '%s' in '%s'", entity, s)
	}
	ob.Entity, ob.Key = entity, key
	return ob, nil
}

// pyRepr quotes s the way Python's repr does for the messages that use it.
func pyRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// String renders a clause for logs and tests.
func (c Clause) String() string {
	switch {
	case c.Op == "IS NULL" || c.Op == "IS NOT NULL":
		return fmt.Sprintf("%s.%s %s", c.Entity, c.Key, c.Op)
	case c.List != nil:
		return fmt.Sprintf("%s.%s %s %q", c.Entity, c.Key, c.Op, c.List)
	case c.IsNum:
		return fmt.Sprintf("%s.%s %s %g", c.Entity, c.Key, c.Op, c.Num)
	default:
		return fmt.Sprintf("%s.%s %s %q", c.Entity, c.Key, c.Op, c.Str)
	}
}
