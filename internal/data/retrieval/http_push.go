package retrieval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/data/offline"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/spec"
)

// OfflineAppender appends pushed rows to the historical (offline) store, so
// training sets see the values serving saw (offline.Engine implements it).
type OfflineAppender interface {
	Append(ctx context.Context, set string, rows []offline.LatestRow) error
}

// pushRequestJSON is the body of POST /push: Feast's, with our feature sets in
// place of Feast's push sources.
type pushRequestJSON struct {
	PushSourceName string                     `json:"push_source_name"`
	FeatureSet     string                     `json:"feature_set"`
	DF             map[string]json.RawMessage `json:"df"`
	To             string                     `json:"to"`
	// FeatureViewName is POST /write-to-online-store's name of the set (what
	// Feast's remote online store sends when it materializes or pushes).
	FeatureViewName string `json:"feature_view_name"`
}

// feastCreatedColumn is the created-timestamp column Feast's remote online
// store adds to a frame; Atrium orders rows by event time only and ignores it.
const feastCreatedColumn = "created"

// pushTimestampColumns are the names the event-time column may have in df:
// Atrium's and the usual Feast one.
var pushTimestampColumns = []string{"timestamp", "event_timestamp"}

// push serves POST /push; writeToOnlineStore serves Feast's
// POST /write-to-online-store, a push of a feature view's rows to the online store.
func (a *API) push(w http.ResponseWriter, r *http.Request) { a.servePush(w, r, false) }

func (a *API) writeToOnlineStore(w http.ResponseWriter, r *http.Request) { a.servePush(w, r, true) }

func (a *API) servePush(w http.ResponseWriter, r *http.Request, feastWrite bool) {
	buf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(buf)
	n, to, warnings, err := a.decodeAndPush(w, r, buf, feastWrite)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := map[string]any{"rows": n, "to": to}
	if len(warnings) > 0 {
		// Failed warn-level checks: the rows were written.
		out["warnings"] = warnings
	}
	server.WriteJSON(w, http.StatusOK, out)
}

func (a *API) decodeAndPush(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, feastWrite bool) (n int, to string, warnings []string, err error) {
	what := "push"
	if feastWrite {
		what = "write-to-online-store"
	}
	body, err := a.readBody(w, r, buf)
	if err != nil {
		return 0, "", nil, err
	}
	var req pushRequestJSON
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, "", nil, jsonError(what, body, err)
	}
	if feastWrite {
		if req.FeatureViewName == "" {
			return 0, "", nil, fmt.Errorf("%w: feature_view_name: missing", ErrInvalidRequest)
		}
		req.FeatureSet, req.PushSourceName, req.To = req.FeatureViewName, "", "online"
		delete(req.DF, feastCreatedColumn)
	}
	name := req.FeatureSet
	switch {
	case name != "" && req.PushSourceName != "" && name != req.PushSourceName:
		return 0, "", nil, fmt.Errorf("%w: push_source_name %q and feature_set %q differ: name one", ErrInvalidRequest, req.PushSourceName, name)
	case name == "":
		name = req.PushSourceName
	}
	if name == "" {
		return 0, "", nil, fmt.Errorf("%w: feature_set (or push_source_name): missing", ErrInvalidRequest)
	}
	set := a.online.cat.sets[name]
	if set == nil {
		return 0, "", nil, fmt.Errorf("%w: feature_set %q is not defined", ErrUnknownFeature, name)
	}
	toOnline, toOffline := true, false
	switch req.To {
	case "", "online":
	case "offline":
		toOnline, toOffline = false, true
	case "online_and_offline":
		toOffline = true
	default:
		return 0, "", nil, fmt.Errorf("%w: to: %q, want online, offline or online_and_offline", ErrInvalidRequest, req.To)
	}
	if toOffline && a.opts.Offline == nil {
		return 0, "", nil, fmt.Errorf("%w: to: %q: this server has no offline store to push to", ErrNotSupported, req.To)
	}
	if req.To == "" {
		req.To = "online"
	}
	rows, keyTypes, err := parsePushFrame(set, req.DF)
	if err != nil {
		return 0, "", nil, err
	}
	if err := a.checkNotFuture(rows); err != nil {
		return 0, "", nil, err
	}
	// The set's checks run before either destination is written, so a refused
	// push leaves both stores as they were.
	failures := runPushChecks(set, rows)
	for i := range failures {
		f := &failures[i]
		level := f.check.EffectiveLevel()
		a.metrics.pushChecks.WithLabelValues(set.Name, f.feature, f.check.String(), level).Inc()
		if level == spec.LevelError {
			return 0, "", nil, fmt.Errorf("%w: feature set %s: %s; the check's level is error, so nothing was written",
				ErrCheckFailed, set.Name, f)
		}
		warnings = append(warnings, f.String())
		a.opts.Logger.Warn("push: data-quality check failed (level warn, rows written)", "set", set.Name,
			"check", f.check.String(), "column", f.feature, "row", f.row, "failed", f.failed, "total", f.total,
			"request_id", server.RequestID(r.Context()))
	}
	// Offline first: a row that reached serving but not training would make the
	// two disagree; the reverse is repaired by the next materialization.
	if toOffline {
		off := make([]offline.LatestRow, len(rows))
		for i, row := range rows {
			parts, _ := row.Key.Parts()
			vals := make([]any, len(row.Values))
			for f, v := range row.Values {
				vals[f] = v.Any()
			}
			off[i] = offline.LatestRow{Key: parts, TS: row.TS, Values: vals}
		}
		if err := a.opts.Offline.Append(r.Context(), set.Name, off); err != nil {
			return 0, "", nil, fmt.Errorf("push %s to the offline store: %w", set.Name, err)
		}
		a.metrics.pushed.WithLabelValues(set.Name, "offline").Add(float64(len(rows)))
	}
	if toOnline {
		err := a.withStoreTimeout(r.Context(), func(ctx context.Context) error {
			return a.online.store.Write(ctx, set.Name, set.featureNames(), rows)
		})
		if err != nil {
			return 0, "", nil, fmt.Errorf("push %s to the online store: %w", set.Name, err)
		}
		a.metrics.pushed.WithLabelValues(set.Name, "online").Add(float64(len(rows)))
	}
	if a.opts.Meta != nil && len(rows) > 0 && slices.Contains(set.keyTypes(), KeyAny) {
		if err := SaveKeyTypes(r.Context(), a.opts.Meta, set.Name, keyTypes); err != nil {
			a.opts.Logger.Warn("push: recording join-key types", "set", set.Name, "error", err)
		}
	}
	return len(rows), req.To, warnings, nil
}

func (s *setInfo) keyTypes() []KeyType {
	out := make([]KeyType, len(s.JoinKeys))
	for i, k := range s.JoinKeys {
		out[i] = k.Type
	}
	return out
}

func (s *setInfo) featureNames() []string {
	out := make([]string, len(s.Features))
	for i, f := range s.Features {
		out[i] = f.Name
	}
	return out
}

// parsePushFrame turns df's columns into rows of set: every join key, the
// event time and every feature must be there, and nothing else. It also
// returns the join-key types of the columns.
func parsePushFrame(set *setInfo, df map[string]json.RawMessage) ([]online.Row, []KeyType, error) {
	if len(df) == 0 {
		return nil, nil, fmt.Errorf("%w: df: empty; want one list per column: %s", ErrInvalidRequest, set.pushColumns())
	}
	n := -1
	first := ""
	checkLen := func(col string, l int) error {
		if n >= 0 && l != n {
			return fmt.Errorf("%w: df: column %s has %d values but %s has %d: every column needs one value per row", ErrInvalidRequest, col, l, first, n)
		}
		n, first = l, col
		return nil
	}
	known := map[string]bool{}

	keys := make([]entityCol, len(set.JoinKeys))
	for i, k := range set.JoinKeys {
		known[k.Name] = true
		raw, ok := df[k.Name]
		if !ok {
			return nil, nil, fmt.Errorf("%w: df: missing join key column %s", ErrInvalidRequest, k.Name)
		}
		keys[i].name = k.Name
		if err := parseKeyColumn("df."+k.Name, raw, k.Type, &keys[i]); err != nil {
			return nil, nil, err
		}
		if err := checkLen(k.Name, keys[i].len()); err != nil {
			return nil, nil, err
		}
	}

	var times []time.Time
	tsCol := ""
	for _, c := range pushTimestampColumns {
		known[c] = true
		if raw, ok := df[c]; ok {
			if tsCol != "" {
				return nil, nil, fmt.Errorf("%w: df: both %s and %s given: name the event time once", ErrInvalidRequest, tsCol, c)
			}
			tsCol = c
			vals, err := parseValueColumn("df."+c, raw, online.KindTime)
			if err != nil {
				return nil, nil, err
			}
			for i, v := range vals {
				if v.IsNull() {
					return nil, nil, fmt.Errorf("%w: df.%s[%d]: null event time", ErrInvalidRequest, c, i)
				}
				times = append(times, v.Time())
			}
			if err := checkLen(c, len(times)); err != nil {
				return nil, nil, err
			}
		}
	}
	if tsCol == "" {
		return nil, nil, fmt.Errorf("%w: df: missing the event-time column (timestamp or event_timestamp)", ErrInvalidRequest)
	}

	values := make([][]online.Value, len(set.Features))
	for f, feat := range set.Features {
		known[feat.Name] = true
		raw, ok := df[feat.Name]
		if !ok {
			return nil, nil, fmt.Errorf("%w: df: missing column %s: a push writes whole rows, so it needs every feature of %s (%s)",
				ErrInvalidRequest, feat.Name, set.Name, set.pushColumns())
		}
		vals, err := parseValueColumn("df."+feat.Name, raw, feat.Type)
		if err != nil {
			return nil, nil, err
		}
		if err := checkLen(feat.Name, len(vals)); err != nil {
			return nil, nil, err
		}
		values[f] = vals
	}
	for c := range df {
		if !known[c] {
			return nil, nil, fmt.Errorf("%w: df: unknown column %q: feature set %s has %s", ErrInvalidRequest, c, set.Name, set.pushColumns())
		}
	}

	rows := make([]online.Row, n)
	flat := make([]online.Value, n*len(set.Features))
	var kb []byte
	for r := range rows {
		kb = appendKey(kb[:0], keys, r)
		vals := flat[r*len(set.Features) : (r+1)*len(set.Features)]
		for f := range vals {
			vals[f] = values[f][r]
		}
		rows[r] = online.Row{Key: online.Key(kb), TS: times[r], Values: vals}
	}
	types := make([]KeyType, len(keys))
	for i := range keys {
		types[i] = keys[i].typ
	}
	return rows, types, nil
}

// appendKey appends the encoded entity key of row r of the key columns.
func appendKey(kb []byte, keys []entityCol, r int) []byte {
	for i := range keys {
		if keys[i].typ == KeyInt64 {
			kb = online.AppendIntKey(kb, keys[i].ints[r])
		} else {
			kb = online.AppendStringKey(kb, keys[i].strs[r])
		}
	}
	return kb
}

func (s *setInfo) pushColumns() string {
	cols := make([]string, 0, len(s.JoinKeys)+1+len(s.Features))
	for _, k := range s.JoinKeys {
		cols = append(cols, k.Name+" ("+k.Type.String()+")")
	}
	cols = append(cols, "timestamp")
	for _, f := range s.Features {
		cols = append(cols, f.Name+" ("+f.Type.String()+")")
	}
	return strings.Join(cols, ", ")
}

// parseValueColumn parses a df column of feature type kind; null is allowed.
func parseValueColumn(path string, raw []byte, kind online.Kind) ([]online.Value, error) {
	s := jsonScanner{b: raw, path: path}
	if err := s.open(); err != nil {
		return nil, err
	}
	var out []online.Value
	for {
		more, err := s.next()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		tok, first, err := s.token()
		if err != nil {
			return nil, err
		}
		v, err := s.value(tok, first, kind)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		s.n++
	}
	return out, nil
}

// value converts one JSON scalar to a value of kind.
func (s *jsonScanner) value(tok []byte, first byte, kind online.Kind) (online.Value, error) {
	if string(tok) == "null" {
		return online.Null, nil
	}
	isString := first == '"'
	isNumber := first == '-' || (first >= '0' && first <= '9')
	switch kind {
	case online.KindInt64:
		if isNumber {
			v, err := s.integer(tok)
			return online.Int64(v), err
		}
	case online.KindFloat64:
		if isNumber {
			f, err := strconv.ParseFloat(string(tok), 64)
			if err != nil {
				return online.Null, s.errorf("malformed number %s", tok)
			}
			return online.Float64(f), nil
		}
	case online.KindString:
		if isString {
			v, err := s.str(tok)
			return online.String(v), err
		}
	case online.KindBool:
		switch string(tok) {
		case "true":
			return online.Bool(true), nil
		case "false":
			return online.Bool(false), nil
		}
	case online.KindTime:
		switch {
		case isString:
			str, err := s.str(tok)
			if err != nil {
				return online.Null, err
			}
			t, err := parseTime(str)
			if err != nil {
				return online.Null, s.errorf("%v", err)
			}
			return online.Time(t), nil
		case isNumber:
			f, err := strconv.ParseFloat(string(tok), 64)
			if err != nil || math.IsInf(f, 0) || math.Abs(f) > 9e9 {
				return online.Null, s.errorf("malformed unix time %s", tok)
			}
			sec, frac := math.Modf(f)
			return online.Time(time.Unix(int64(sec), int64(frac*1e9)).UTC()), nil
		}
	}
	return online.Null, s.errorf("want %s, got %s", kindNoun(kind), tok)
}

func kindNoun(k online.Kind) string {
	switch k {
	case online.KindInt64:
		return "an integer"
	case online.KindFloat64:
		return "a number"
	case online.KindString:
		return "a string"
	case online.KindBool:
		return "true or false"
	case online.KindTime:
		return "a timestamp (RFC 3339 string or unix seconds)"
	}
	return k.String()
}

// timeLayouts are the timestamp strings a push accepts; those without a zone are UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			if y := t.Year(); y < 1678 || y > 2261 {
				return time.Time{}, fmt.Errorf("timestamp %q is outside 1678-2261", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want a timestamp such as 2026-01-31T12:00:00Z, got %q", s)
}

// checkNotFuture refuses rows stamped later than the server's clock plus
// PushMaxSkew: the event-time guard keeps the newest row of a key, so one row
// from the far future would otherwise win over every real one after it.
func (a *API) checkNotFuture(rows []online.Row) error {
	limit := a.opts.Now().Add(a.opts.PushMaxSkew)
	for i := range rows {
		if rows[i].TS.After(limit) {
			return fmt.Errorf("%w: row %d: event time %s is later than the server's clock plus %s (%s): push rows as they happen, not ahead of time",
				ErrInvalidRequest, i, rows[i].TS.Format(time.RFC3339Nano), a.opts.PushMaxSkew, limit.Format(time.RFC3339))
		}
	}
	return nil
}

// deleteRequestJSON is the body of POST /delete-online. Feast has no route to
// delete keys; this one reads like its push: the set, and the keys as columns.
type deleteRequestJSON struct {
	FeatureSet string                     `json:"feature_set"`
	Entities   map[string]json.RawMessage `json:"entities"`
	// Timestamp is the tombstone's time (see online.Deleter): rows stamped at
	// or before it cannot bring the keys back. Default: the server's clock.
	Timestamp string `json:"timestamp"`
}

// deleteOnline serves POST /delete-online: every key becomes a tombstone in
// the online store. The historical store is not touched: a delete takes a
// key out of serving, and training sets keep what happened.
func (a *API) deleteOnline(w http.ResponseWriter, r *http.Request) {
	buf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(buf)
	n, at, err := a.decodeAndDelete(w, r, buf)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"deleted": n, "timestamp": at.Format(time.RFC3339Nano)})
}

func (a *API) decodeAndDelete(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (int, time.Time, error) {
	body, err := a.readBody(w, r, buf)
	if err != nil {
		return 0, time.Time{}, err
	}
	var req deleteRequestJSON
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, time.Time{}, jsonError("delete-online", body, err)
	}
	if req.FeatureSet == "" {
		return 0, time.Time{}, fmt.Errorf("%w: feature_set: missing", ErrInvalidRequest)
	}
	set := a.online.cat.sets[req.FeatureSet]
	if set == nil {
		return 0, time.Time{}, fmt.Errorf("%w: feature_set %q is not defined", ErrUnknownFeature, req.FeatureSet)
	}
	d, ok := a.online.store.(online.Deleter)
	if !ok {
		return 0, time.Time{}, fmt.Errorf("%w: this online store cannot delete keys", ErrNotSupported)
	}
	at := a.opts.Now().UTC()
	if req.Timestamp != "" {
		if at, err = parseTime(req.Timestamp); err != nil {
			return 0, time.Time{}, fmt.Errorf("%w: timestamp: %v", ErrInvalidRequest, err)
		}
		// A tombstone far in the future would block the key as a poisoned row does.
		if err := a.checkNotFuture([]online.Row{{TS: at}}); err != nil {
			return 0, time.Time{}, err
		}
	}
	n := -1
	keys := make([]entityCol, len(set.JoinKeys))
	for i, k := range set.JoinKeys {
		raw, ok := req.Entities[k.Name]
		if !ok {
			return 0, time.Time{}, fmt.Errorf("%w: entities: missing join key column %s", ErrInvalidRequest, k.Name)
		}
		keys[i].name = k.Name
		if err := parseKeyColumn("entities."+k.Name, raw, k.Type, &keys[i]); err != nil {
			return 0, time.Time{}, err
		}
		if n >= 0 && keys[i].len() != n {
			return 0, time.Time{}, fmt.Errorf("%w: entities: column %s has %d values but %s has %d", ErrInvalidRequest, k.Name, keys[i].len(), keys[0].name, n)
		}
		n = keys[i].len()
	}
	if len(req.Entities) != len(set.JoinKeys) {
		for c := range req.Entities {
			if !slices.ContainsFunc(set.JoinKeys, func(k JoinKeyDef) bool { return k.Name == c }) {
				return 0, time.Time{}, fmt.Errorf("%w: entities: %q is not a join key of %s (%s)", ErrInvalidRequest, c, set.Name, set.pushColumns())
			}
		}
	}
	if n <= 0 {
		return 0, time.Time{}, fmt.Errorf("%w: entities: no keys to delete", ErrInvalidRequest)
	}
	out := make([]online.Key, n)
	var kb []byte
	for row := range out {
		kb = appendKey(kb[:0], keys, row)
		out[row] = online.Key(kb)
	}
	if err := a.withStoreTimeout(r.Context(), func(ctx context.Context) error { return d.Delete(ctx, set.Name, out, at) }); err != nil {
		return 0, time.Time{}, fmt.Errorf("delete keys of %s from the online store: %w", set.Name, err)
	}
	a.metrics.deleted.WithLabelValues(set.Name).Add(float64(n))
	a.opts.Logger.Info("online keys deleted", "set", set.Name, "keys", n, "at", at, "request_id", server.RequestID(r.Context()))
	return n, at, nil
}

// withStoreTimeout runs a write to the online store under the store timeout,
// as reads are: a store that does not answer fails the request with 503
// (ErrStoreUnavailable) within StoreTimeout, not at the request's deadline.
// A write cut by the timeout may have been applied in part; pushing the
// same rows again is safe (the event-time guard keeps the newest row).
func (a *API) withStoreTimeout(ctx context.Context, write func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(ctx, a.opts.StoreTimeout)
	defer cancel()
	if err := write(sctx); err != nil {
		return storeError(sctx, a.opts.StoreTimeout, err)
	}
	return nil
}
