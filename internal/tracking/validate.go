package tracking

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// MLflow's limits (mlflow/utils/validation.py), enforced the same way.
const (
	MaxParamsTagsPerBatch  = 100
	MaxMetricsPerBatch     = 1000
	MaxEntitiesPerBatch    = 1000
	MaxBatchRequestBytes   = 8 << 20 // see the log-batch route in api.go
	MaxParamValueLength    = 6000
	MaxTagValueLength      = 8000
	MaxExperimentNameLen   = 500
	MaxExperimentTagKeyLen = 250
	MaxExperimentTagValLen = 20000
	MaxEntityKeyLength     = 250
	MaxDatasetNameSize     = 500
	MaxDatasetDigestSize   = 36
	MaxDatasetSchemaSize   = 1048575
	MaxDatasetSourceSize   = 65535
	MaxDatasetProfileSize  = 16777215
	MaxInputTagKeySize     = 255
	MaxInputTagValueSize   = 500
	MaxArtifactLocationLen = 2048
	MaxSearchRunsResults   = 50000
	MaxExperimentsPerPage  = 50000
	MaxMetricHistoryBulk   = 25000
	MaxRunsPerBulkInterval = 100
	MaxResultsPerRunBulk   = 2500
)

// names of params, metrics and tags: alphanumerics, _ - . space / and colon
// (Python's \w is Unicode-aware, hence \p{L}\p{N}).
var validName = regexp.MustCompile(`^[/\p{L}\p{N}_.\- :]*$`)

var runIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,255}$`)

func jsonValue(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func invalidValue(field string, v any, msg string) *wire.Error {
	if msg == "" {
		return wire.Invalidf("Invalid value %s for parameter '%s' supplied.", jsonValue(v), field)
	}
	// msg is the server's explanation, not input: appended whole, where
	// Invalidf would cut it as it cuts the value.
	e := wire.Invalidf("Invalid value %s for parameter '%s' supplied", jsonValue(v), field)
	e.Message += ": " + msg
	return e
}

func joinPath(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// pathNotUnique is MLflow's rule that a name must not resolve to another name
// when used as a file path.
func pathNotUnique(name string) bool {
	n := path.Clean(name)
	return n != name || n == "." || strings.HasPrefix(n, "..") || strings.HasPrefix(n, "/")
}

const badCharacters = "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."

// validateName checks a param, metric or tag key. field names it in messages
// ("key", "metrics[3].key").
func validateName(name, field string) error {
	if !validName.MatchString(name) {
		return invalidValue(field, name, badCharacters)
	}
	if pathNotUnique(name) {
		return invalidValue(field, name, fmt.Sprintf("Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", server.Clip(path.Clean(name))))
	}
	return nil
}

func lengthError(what string, limit int) *wire.Error {
	return wire.Invalidf("'%s' exceeds the maximum length of %d characters", what, limit)
}

// checkLen rejects s longer than limit characters.
func checkLen(s, what string, limit int) error {
	if utf8.RuneCountInString(s) > limit {
		return lengthError(what, limit)
	}
	return nil
}

// truncate cuts s to limit characters (MLflow truncates long param and tag
// values by default, MLFLOW_TRUNCATE_LONG_VALUES=true).
func truncate(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit])
}

// ValidateRunID checks the shape of a run id.
func ValidateRunID(id, field string) error {
	if !runIDPattern.MatchString(id) {
		return invalidValue(field, id, "")
	}
	return nil
}

func validateParam(p *KV, prefix string) error {
	if err := validateName(p.Key, joinPath(prefix, "key")); err != nil {
		return err
	}
	if err := checkLen(p.Key, "Param key", MaxEntityKeyLength); err != nil {
		return err
	}
	p.Value = truncate(p.Value, MaxParamValueLength)
	return nil
}

func validateTag(t *KV, prefix string) error {
	if err := validateName(t.Key, joinPath(prefix, "key")); err != nil {
		return err
	}
	if err := checkLen(t.Key, joinPath(prefix, "key"), MaxEntityKeyLength); err != nil {
		return err
	}
	t.Value = truncate(t.Value, MaxTagValueLength)
	return nil
}

func validateMetric(m Metric, prefix string) error {
	if err := validateName(m.Key, joinPath(prefix, "name")); err != nil {
		return err
	}
	if m.Timestamp < 0 {
		return invalidValue(joinPath(prefix, "timestamp"), m.Timestamp,
			fmt.Sprintf("metric '%s' (value=%v). Timestamp must be a nonnegative long (64-bit integer) ", m.Key, float64(m.Value)))
	}
	if err := checkLen(m.DatasetName, joinPath(prefix, "dataset_name"), MaxDatasetNameSize); err != nil {
		return err
	}
	if err := checkLen(m.DatasetDigest, joinPath(prefix, "dataset_digest"), MaxDatasetDigestSize); err != nil {
		return err
	}
	if err := checkLen(m.ModelID, joinPath(prefix, "model_id"), MaxEntityKeyLength); err != nil {
		return err
	}
	return checkLen(m.Key, "Metric name", MaxEntityKeyLength)
}

func validateExperimentName(name string) error {
	if name == "" {
		return wire.Invalidf("Invalid experiment name: '%s'", name)
	}
	return checkLen(name, "name", MaxExperimentNameLen)
}

func validateExperimentTag(t KV) error {
	if err := validateName(t.Key, "key"); err != nil {
		return err
	}
	if err := checkLen(t.Key, "key", MaxExperimentTagKeyLen); err != nil {
		return err
	}
	return checkLen(t.Value, "value", MaxExperimentTagValLen)
}

// parseExperimentID turns an experiment id string into the stored integer.
func parseExperimentID(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
	if err != nil {
		return 0, wire.Invalidf("Invalid experiment ID '%s'. Experiment ID must be a valid integer.", id)
	}
	return n, nil
}

func validateDataset(d Dataset) error {
	for _, c := range []struct {
		v     string
		name  string
		limit int
	}{
		{d.Name, "name", MaxDatasetNameSize}, {d.Digest, "digest", MaxDatasetDigestSize},
		{d.Source, "source", MaxDatasetSourceSize}, {d.Schema, "schema", MaxDatasetSchemaSize},
		{d.Profile, "profile", MaxDatasetProfileSize},
	} {
		if err := checkLen(c.v, c.name, c.limit); err != nil {
			return err
		}
	}
	switch {
	case d.Name == "":
		return wire.Invalidf("Dataset name cannot be None")
	case d.Digest == "":
		return wire.Invalidf("Dataset digest cannot be None")
	case d.SourceType == "":
		return wire.Invalidf("Dataset source_type cannot be None")
	}
	return nil
}

func validateInputTag(t KV) error {
	if t.Key == "" {
		return wire.Invalidf("InputTag key cannot be None")
	}
	if err := checkLen(t.Key, "key", MaxInputTagKeySize); err != nil {
		return err
	}
	return checkLen(t.Value, "value", MaxInputTagValueSize)
}

// validateLoggedModelName is MLflow's rule for logged model names.
func validateLoggedModelName(name string) error {
	if strings.ContainsAny(name, `/:.%"'`) {
		return wire.Invalidf(`Invalid model name ('%s') provided. Model name must be a non-empty string and cannot contain the following characters: ('/', ':', '.', '%%', '"', "'")`, name)
	}
	return nil
}
