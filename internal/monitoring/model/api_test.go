package model

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/server"
	"github.com/atrium-ml/atrium/internal/serving/predlog"
)

func TestAPI(t *testing.T) {
	w := newWorld(t)
	v := w.register(t, "ranker", reference(3000))
	// The API reports on windows ending now.
	rows := traffic(2, "c", 200, time.Now().Add(-time.Hour), time.Hour-time.Minute, 300, 0)
	w.log(t, "ranker", v, predlog.RoutePredict, rows)
	srv := httptest.NewServer(server.New(server.Options{}, &API{Monitor: w.mon, Labels: w.labels}).Handler())
	defer srv.Close()

	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"labels", "POST", "/v1/labels", `{"labels": [{"model": "ranker", "request_id": "c1", "label": 1},
			{"model": "ranker", "entities": {"listing_id": "3"}, "time": "2026-12-05T10:00:00Z", "horizon": "2h", "label": 0}]}`,
			200, `{"accepted":2,"duplicates":0}`},
		{"duplicate", "POST", "/v1/labels", `{"labels": [{"model": "ranker", "request_id": "c1", "label": 0}]}`, 200, `{"accepted":1,"duplicates":1}`},
		{"no label value", "POST", "/v1/labels", `{"labels": [{"model": "ranker", "request_id": "c1", "label": 1}, {"model": "ranker", "request_id": "c2"}]}`,
			400, `labels[1]: label: missing, expected a number`},
		{"unknown field", "POST", "/v1/labels", `{"labels": [{"model": "ranker", "request": "c2", "label": 1}]}`, 400, `labels[0]: unknown field \"request\"`},
		{"entities without time", "POST", "/v1/labels", `{"labels": [{"model": "ranker", "entities": {"listing_id": "3"}, "label": 1}]}`, 400, `labels[0]: time: missing`},
		{"unknown model", "POST", "/v1/labels", `{"labels": [{"model": "nobody", "request_id": "c2", "label": 1}]}`, 400, `labels[0].model: unknown model: model \"nobody\" is not registered`},
		{"not JSON", "POST", "/v1/labels", `[1, 2]`, 400, `body: cannot unmarshal array`},
		{"empty", "POST", "/v1/labels", `{"labels": []}`, 400, `labels: empty`},
		{"too many", "POST", "/v1/labels", `{"labels": [` + strings.Repeat(`{},`, MaxLabels) + `{}]}`, 413, `at most 10000 per request`},
		{"report", "GET", "/v1/monitoring/models/ranker?window=2h", "", 200, `"drifted_count":1`},
		{"unknown model report", "GET", "/v1/monitoring/models/nobody", "", 404, `model \"nobody\" is not registered`},
		{"bad window", "GET", "/v1/monitoring/models/ranker?window=forever", "", 400, `window \"forever\"`},
		{"window too long", "GET", "/v1/monitoring/models/ranker?window=90d", "", 400, `up to 31d`},
		{"metrics", "GET", "/metrics", "", 200, `atrium_feature_drift_score{feature="rent",model="ranker",version="1"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(c.method, c.path, c.body)
			if code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("%s %s = %d %s\nwant %d containing %s", c.method, c.path, code, body, c.code, c.want)
			}
		})
	}
	_, body := do("GET", "/v1/monitoring/models/ranker?window=2h", "")
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Performance == nil || rep.Performance.Labeled != 1 || rep.Performance.Duplicates != 1 {
		t.Errorf("performance after the labels = %+v", rep.Performance)
	}
}
