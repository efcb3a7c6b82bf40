package train

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/fit"
	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/serving/register"
)

// registerChampion fits a one-tree model of task on the column feature
// (random labels, 0 or 1) and registers it as version 1 of name at alias
// champion, recording label as its training label ("" records none, as a
// model fitted outside atrium train or atrium fit may).
func registerChampion(t *testing.T, p *project, name, task, feature, label string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	ds := &ml.Dataset{Columns: []ml.Column{{Name: feature, Kind: ml.Numeric}}}
	for range 50 {
		for range 4 {
			ds.Columns[0].Values = append(ds.Columns[0].Values, float32(50+rng.Float64()*100))
			ds.Label = append(ds.Label, float64(rng.IntN(2)))
		}
		if task == "lambdarank" {
			ds.Groups = append(ds.Groups, 4)
		}
	}
	group := ""
	if task == "lambdarank" {
		group = "g"
	}
	m, err := fit.Fit(context.Background(), fit.Options{Label: "y", Group: group, Task: task,
		Params: map[string]string{"num_iterations": "1", "num_leaves": "2", "min_data_in_leaf": "1"}}, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Training.Label = label
	reg, err := register.Model(context.Background(), p.stores, m, register.Options{Name: name, Alias: "champion"})
	if err != nil || reg.Version != "1" {
		t.Fatalf("register the champion: %v %v", reg, err)
	}
}

// TestGateComparableChampion checks the promotion gate, and the dry run's
// plan before it, against champions the lambdarank candidate on label
// relevance can and cannot be compared with: a model of another task or
// another label, or one with a feature the training set lacks, is kept
// without being scored, the plan saying so before any training; a model of
// the same task and label, or of the same task recording no label (older
// versions), is scored on the test rows, the plan giving the same metric
// the gate then compares.
func TestGateComparableChampion(t *testing.T) {
	p := newProject(t)
	for _, c := range []struct {
		name, task, feature, label string
		kept                       string // "": the champion is scored
	}{
		{"other task", "binary", "price", "clicked",
			`champion version 1 is a binary model of label "clicked"; the candidate is lambdarank of "relevance": not comparable`},
		{"other label", "lambdarank", "price", "clicks",
			`champion version 1 is a lambdarank model of label "clicks"; the candidate is lambdarank of "relevance": not comparable`},
		{"other task, no label", "regression", "price", "",
			`champion version 1 is a regression model; the candidate is lambdarank of "relevance": not comparable`},
		{"feature missing", "lambdarank", "rooms", "relevance",
			`the champion version 1 cannot be scored on this test split (bad data: column "rooms", a feature of the model, is missing)`},
		{"same task and label", "lambdarank", "price", "relevance", ""},
		{"no label recorded", "lambdarank", "price", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			model := "ranker_" + strings.ReplaceAll(strings.ReplaceAll(c.name, " ", "_"), ",", "")
			registerChampion(t, p, model, c.task, c.feature, c.label)
			src := strings.Replace(strings.Replace(rankerSpec, "MARGIN", "0", 1), "trials: 6", "trials: 2", 1)
			s := p.spec(t, "ranker.yaml", strings.Replace(src, "register: {model: ranker,", "register: {model: "+model+",", 1))

			dry, err := p.run(t, s, true)
			if err != nil {
				t.Fatal(err)
			}
			pl := dry.Plan
			if pl.Champion != "1" || pl.ChampionKept != c.kept || (pl.ChampionTestMetric == nil) != (c.kept != "") {
				t.Fatalf("plan: champion %q kept %q metric %v, want version 1 kept %q", pl.Champion, pl.ChampionKept, pl.ChampionTestMetric, c.kept)
			}

			res, err := p.run(t, s, false)
			if err != nil {
				t.Fatal(err)
			}
			d := res.Decision
			if c.kept != "" {
				if d.Promote || res.Champion != nil || !strings.HasPrefix(d.Reason, c.kept) || !strings.HasSuffix(d.Reason, "not replaced") {
					t.Errorf("decision %+v champion %+v, want kept: %q", d, res.Champion, c.kept)
				}
				return
			}
			if res.Champion == nil || res.Champion.Version != "1" || res.Champion.TestMetric != *pl.ChampionTestMetric ||
				!strings.Contains(d.Reason, "beat") {
				t.Errorf("decision %+v champion %+v, want version 1 scored at the plan's %v", d, res.Champion, *pl.ChampionTestMetric)
			}
		})
	}
}
