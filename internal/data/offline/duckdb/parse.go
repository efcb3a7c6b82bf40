package duckdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// exprCall is the function call ParseExpr wraps an expression in.
const exprCall = "atrium_expr"

// ParseExpr implements pipeline.Binder. DuckDB parses, without binding,
//
//	SELECT atrium_expr(<expr>)
//
// with json_serialize_sql, and the tree must be that statement alone: one select
// item, the call, with no alias and expr as its only argument (no FILTER, ORDER
// BY or DISTINCT); no FROM, WHERE, GROUP BY, HAVING, QUALIFY, ORDER BY, LIMIT
// or CTE. Then expr closes every parenthesis it opens and no other, so it stays
// one expression wherever a plan pastes it in parentheses: "amount) AS a,
// (amount" or "x = 1) OR (true" cannot reach past it. Subqueries and window
// functions are refused anywhere in expr: a feature is computed per source row.
func (e *Engine) ParseExpr(ctx context.Context, expr string) error {
	var out []byte
	query := "SELECT " + exprCall + "(" + expr + ")"
	if err := e.db.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(CAST("+sqlQuote(query)+" AS VARCHAR)) AS VARCHAR)").Scan(&out); err != nil {
		return err
	}
	var tree struct {
		Error      bool   `json:"error"`
		Message    string `json:"error_message"`
		Statements []struct {
			Node selectNode `json:"node"`
		} `json:"statements"`
	}
	if err := json.Unmarshal(out, &tree); err != nil {
		return fmt.Errorf("reading DuckDB's parse tree: %w", err)
	}
	switch {
	case tree.Error && bytes.Contains([]byte(tree.Message), []byte("Only SELECT statements")), len(tree.Statements) > 1:
		return errors.New("expected one SQL expression, got several statements")
	case tree.Error:
		return errors.New(tree.Message)
	case len(tree.Statements) == 0:
		return errors.New("expected one SQL expression, got none")
	}
	n := tree.Statements[0].Node
	if n.Type != "SELECT_NODE" || len(n.SelectList) != 1 || n.FromTable.Type != "EMPTY" ||
		present(n.Where) || len(n.GroupExpressions) > 0 || len(n.GroupSets) > 0 || present(n.Having) ||
		present(n.Qualify) || present(n.Sample) || len(n.Modifiers) > 0 || len(n.CTEMap.Map) > 0 {
		return errors.New("expected one SQL expression, got text that continues past it " +
			"(a ')' closing a parenthesis the expression did not open, a top-level ',', or a FROM, WHERE or other query clause)")
	}
	call := n.SelectList[0]
	if call.Class != "FUNCTION" || call.FunctionName != exprCall || call.Alias != "" || len(call.Children) != 1 ||
		present(call.Filter) || len(call.OrderBys.Orders) > 0 || call.Distinct {
		return errors.New("expected one SQL expression, got text that continues past it " +
			"(a ')' closing a parenthesis the expression did not open, or a top-level ',', AS, ORDER BY, FILTER or DISTINCT)")
	}
	var arg any
	if err := json.Unmarshal(call.Children[0], &arg); err != nil {
		return fmt.Errorf("reading DuckDB's parse tree: %w", err)
	}
	switch {
	case hasClass(arg, "SUBQUERY"):
		return errors.New("subqueries are not allowed in a feature expression, expected an expression over the source row's columns")
	case hasClass(arg, "WINDOW"):
		return errors.New("window functions are not allowed in a feature expression, expected a per-row expression (aggregations over time go in windows and aggs)")
	case hasClass(arg, "STAR"):
		return errors.New("expected one SQL expression, got * (all columns)")
	}
	return nil
}

// selectNode is the part of DuckDB's serialized SELECT_NODE that ParseExpr checks.
type selectNode struct {
	Type      string            `json:"type"`
	Modifiers []json.RawMessage `json:"modifiers"`
	CTEMap    struct {
		Map []json.RawMessage `json:"map"`
	} `json:"cte_map"`
	SelectList []struct {
		Class        string            `json:"class"`
		Alias        string            `json:"alias"`
		FunctionName string            `json:"function_name"`
		Children     []json.RawMessage `json:"children"`
		Filter       json.RawMessage   `json:"filter"`
		OrderBys     struct {
			Orders []json.RawMessage `json:"orders"`
		} `json:"order_bys"`
		Distinct bool `json:"distinct"`
	} `json:"select_list"`
	FromTable struct {
		Type string `json:"type"`
	} `json:"from_table"`
	Where            json.RawMessage   `json:"where_clause"`
	GroupExpressions []json.RawMessage `json:"group_expressions"`
	GroupSets        []json.RawMessage `json:"group_sets"`
	Having           json.RawMessage   `json:"having"`
	Sample           json.RawMessage   `json:"sample"`
	Qualify          json.RawMessage   `json:"qualify"`
}

// present reports a serialized field that is set (not absent, not null).
func present(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }

// hasClass reports whether a decoded expression tree holds a node of the class.
func hasClass(v any, class string) bool {
	switch x := v.(type) {
	case map[string]any:
		if c, _ := x["class"].(string); c == class {
			return true
		}
		for _, child := range x {
			if hasClass(child, class) {
				return true
			}
		}
	case []any:
		for _, child := range x {
			if hasClass(child, class) {
				return true
			}
		}
	}
	return false
}
