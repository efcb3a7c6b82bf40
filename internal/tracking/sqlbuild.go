package tracking

import (
	"strings"

	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// viewStages maps a ViewType to lifecycle stages.
func viewStages(v wire.Enum) ([]any, error) {
	if v == "" {
		return []any{StageActive}, nil
	}
	name, ok := v.Name([]string{"", "ACTIVE_ONLY", "DELETED_ONLY", "ALL"})
	if !ok {
		return nil, wire.Invalidf("Invalid value %q for parameter 'view_type': expected ACTIVE_ONLY, DELETED_ONLY or ALL", string(v))
	}
	switch name {
	case "DELETED_ONLY":
		return []any{StageDeleted}, nil
	case "ALL":
		return []any{StageActive, StageDeleted}, nil
	}
	return []any{StageActive}, nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func joinComma(ss []string) string { return strings.Join(ss, ", ") }
