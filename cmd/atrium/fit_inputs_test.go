package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
)

// TestFitBadInputs: every bad input a LightGBM user is likely to try gets an
// error naming the file, column, row or parameter, the right exit code, and
// leaves no model behind.
func TestFitBadInputs(t *testing.T) {
	td := filepath.Join("testdata", "fit")
	in := func(name string) string { return filepath.Join(td, name) }
	dir := t.TempDir()
	model := filepath.Join(dir, "m.json")
	bin := []string{"fit", "--data", in("train.csv"), "--label", "y", "--task", "binary", "--out", model, "--param", "num_iterations=3"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"binary label 2 (trees)", []string{"fit", "--data", in("label2.csv"), "--label", "y", "--task", "binary", "--out", model},
			exitFailure, in("label2.csv") + `: column "y" row 3: label is 2, want 0 or 1 for --task binary`},
		{"binary label 2 (linear)", []string{"fit", "--data", in("label2.csv"), "--label", "y", "--task", "binary", "--algorithm", "linear", "--out", model},
			exitFailure, in("label2.csv") + `: column "y" row 3: label is 2, want 0 or 1 for --task binary`},
		{"binary label 2 in --valid", append(bin, "--valid", in("valid_label2.csv")),
			exitFailure, in("valid_label2.csv") + `: column "y" row 2: label is 2, want 0 or 1 for --task binary`},
		{"relevance above label_gain", []string{"fit", "--data", in("rel31.csv"), "--label", "rel", "--group", "q", "--task", "lambdarank", "--out", model},
			exitFailure, in("rel31.csv") + `: column "rel" row 2: label is 31, want a whole-number relevance 0..30 (one per label_gain entry)`},
		{"relevance above a short label_gain", []string{"fit", "--data", in("rel31.csv"), "--label", "rel", "--group", "q", "--task", "lambdarank", "--param", "label_gain=0,1,3", "--out", model},
			exitFailure, `row 2: label is 31, want a whole-number relevance 0..2 (one per label_gain entry)`},
		{"negative relevance", []string{"fit", "--data", in("relneg.csv"), "--label", "rel", "--group", "q", "--task", "lambdarank", "--out", model},
			exitFailure, in("relneg.csv") + `: column "rel" row 3: label is -1, want a whole-number relevance 0..30`},
		{"fractional class", []string{"fit", "--data", in("class_frac.csv"), "--label", "y", "--task", "multiclass", "--out", model},
			exitFailure, in("class_frac.csv") + `: column "y" row 2: label is 1.5, want a class index 0, 1, 2, ...`},
		{"class beyond num_class", []string{"fit", "--data", in("class_frac.csv"), "--label", "y", "--task", "multiclass", "--param", "num_class=2", "--algorithm", "linear", "--out", model},
			exitFailure, `row 2: label is 1.5, want a class index 0..1 (num_class=2)`},
		{"multiclass of one class", []string{"fit", "--data", in("zero_weights.csv"), "--label", "w", "--task", "multiclass", "--out", model},
			exitFailure, in("zero_weights.csv") + `: --task multiclass: every label of column "w" is 0; want at least two classes (or set num_class)`},
		{"multiclass label that is no class index", []string{"fit", "--data", in("train.csv"), "--label", "x1", "--task", "multiclass", "--out", model},
			exitFailure, `want a class index 0, 1, 2, ...`},
		{"multiclass of 100001 classes", []string{"fit", "--data", in("class_big.csv"), "--label", "y", "--task", "multiclass", "--out", model},
			exitFailure, `the largest label of column "y" is 100000, more than 10000 classes`},
		{"multiclass of 100001 classes (linear)", []string{"fit", "--data", in("class_big.csv"), "--label", "y", "--task", "multiclass", "--algorithm", "linear", "--out", model},
			exitFailure, `the largest label of column "y" is 100000, more than 10000 classes`},
		{"multiclass of one class (linear)", []string{"fit", "--data", in("zero_weights.csv"), "--label", "w", "--task", "multiclass", "--algorithm", "linear", "--out", model},
			exitFailure, `every label of column "w" is 0`},
		{"all weights zero", []string{"fit", "--data", in("zero_weights.csv"), "--label", "y", "--weight", "w", "--task", "binary", "--out", model},
			exitFailure, "the weights sum to 0"},
		{"early stopping without validation data", append(bin, "--param", "early_stopping_round=5"),
			exitUsage, `"early_stopping_round": needs a validation set`},
		{"metric of another objective", append(bin, "--valid", in("train.csv"), "--param", "metric=multi_logloss"),
			exitUsage, `"metric": multi_logloss does not apply to objective binary`},
		{"LightGBM's categorical_feature", append(bin, "--param", "categorical_feature=name:c"),
			exitUsage, "--param categorical_feature: atrium fit takes columns by name with --categorical COL"},
		{"LightGBM's query alias", append(bin, "--param", "query=0"),
			exitUsage, "--param query: atrium fit takes columns by name with --group COL"},
		{"LightGBM's label alias, any case", append(bin, "--param", "Label=y"),
			exitUsage, "--param Label: atrium fit takes columns by name with --label COL"},
		{"unknown split, before reading data", []string{"fit", "--data", in("no-such-file.csv"), "--label", "y", "--task", "binary", "--valid-fraction", "0.2", "--split", "by-day", "--out", model},
			exitUsage, `--split "by-day": want random, stratified, group or time`},
		{"every problem at once", []string{"fit", "--data", in("train.csv"), "--label", "y", "--task", "lambdarank", "--valid-fraction", "2", "--out", model},
			exitUsage, "--task lambdarank needs --group (the query column)\n--valid-fraction 2: want a share in [0, 1), and not together with --valid"},
		{"a split that cuts queries", []string{"fit", "--data", in("rel31.csv"), "--label", "rel", "--group", "q", "--task", "lambdarank", "--param", "label_gain=" + strings.Repeat("1,", 31) + "1", "--valid-fraction", "0.5", "--split", "random", "--out", model},
			exitUsage, "--valid-fraction: random split of a dataset with query groups would cut queries"},
		{"bad parameter reported before reading data", []string{"fit", "--data", in("no-such-file.csv"), "--label", "y", "--task", "multiclass", "--param", "num_leaves=1", "--out", model},
			exitUsage, `parameter "num_leaves": 1, want 2..131072`},
		{"bad linear parameter reported before reading data", []string{"fit", "--data", in("no-such-file.csv"), "--label", "y", "--task", "binary", "--algorithm", "linear", "--param", "num_leaves=3", "--out", model},
			exitUsage, `unknown parameter "num_leaves"`},
		{"--out in a missing directory", []string{"fit", "--data", in("train.csv"), "--label", "y", "--task", "binary", "--out", filepath.Join(dir, "no", "m.json")},
			exitUsage, "--out " + filepath.Join(dir, "no", "m.json") + ": directory " + filepath.Join(dir, "no") + " does not exist"},
		{"predict --passthrough of an output column, before reading data", []string{"predict", "--model", filepath.Join("testdata", "fit", "model.txt"), "--data", in("no-such-file.csv"), "--passthrough", "prediction", "--out", filepath.Join(dir, "p.csv")},
			exitUsage, `--passthrough prediction: the output already has a column "prediction"`},
		{"predict --out of unknown type", []string{"predict", "--model", in("label2.csv"), "--data", in("train.csv"), "--out", filepath.Join(dir, "p.xlsx")},
			exitUsage, "--out " + filepath.Join(dir, "p.xlsx") + ": unknown file type: want .csv, .tsv or .parquet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := atrium(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "panic") {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.want)
			}
			if _, err := os.Stat(model); !os.IsNotExist(err) {
				t.Errorf("a failed fit left %s", model)
			}
		})
	}
}

// TestFitInputsLightGBMAccepts: inputs LightGBM accepts and Atrium must too.
func TestFitInputsLightGBMAccepts(t *testing.T) {
	td := filepath.Join("testdata", "fit")
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string // in the summary
	}{
		// LightGBM takes num_threads <= 0 as "all cores"; scikit-learn users write n_jobs=-1.
		{"n_jobs=-1", []string{"--task", "binary", "--param", "n_jobs=-1", "--param", "num_iterations=2"}, "iterations  2"},
		{"num_threads=-4", []string{"--task", "binary", "--param", "num_threads=-4", "--param", "num_iterations=2"}, "iterations  2"},
		// A validation file of one class: AUC is undefined and scores 1, as in
		// LightGBM; it must not fail the fit.
		{"one-class validation (linear)", []string{"--task", "binary", "--algorithm", "linear", "--valid", filepath.Join(td, "valid_one_class.csv")}, "valid_auc=1 "},
		// The seed under one of LightGBM's aliases and --seed: the parameter
		// seeds training, --seed the split; not "seed set twice".
		{"random_state with --seed", []string{"--task", "binary", "--seed", "5", "--valid-fraction", "0.2", "--param", "random_state=3", "--param", "num_iterations=2"}, "iterations  2"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := filepath.Join(dir, "m"+string(rune('a'+i))+".json")
			args := append([]string{"fit", "--data", filepath.Join(td, "train.csv"), "--label", "y", "--out", model}, tt.args...)
			code, out, errOut := atrium(t, args...)
			if code != exitOK || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, summary %q, stderr %q; want 0 and %q", code, out, errOut, tt.want)
			}
		})
	}
}

// TestFitPredictWhitespaceNames: LightGBM text turns whitespace in feature
// names into "_"; a model written as .txt still predicts on the file it was
// trained on, the same as the Atrium-format model.
func TestFitPredictWhitespaceNames(t *testing.T) {
	data := filepath.Join("testdata", "fit", "spaces.csv")
	dir := t.TempDir()
	var preds []string
	for _, ext := range []string{".json", ".txt"} {
		model := filepath.Join(dir, "m"+ext)
		if code, _, errOut := atrium(t, "fit", "--data", data, "--label", "y", "--task", "binary", "--param", "num_iterations=5", "--out", model); code != exitOK {
			t.Fatalf("fit %s: %s", ext, errOut)
		}
		out := filepath.Join(dir, "p"+ext+".csv")
		if code, _, errOut := atrium(t, "predict", "--model", model, "--data", data, "--out", out); code != exitOK {
			t.Fatalf("predict with %s: %s", ext, errOut)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		preds = append(preds, string(b))
	}
	if preds[0] != preds[1] {
		t.Errorf("the .txt model predicts differently from the .json model")
	}
}

// TestPredictAllMissingTrainingColumn: a column empty in training is a
// categorical feature without categories; numbers in it at predict time are
// unseen categories (no panic), for linear and tree models.
func TestPredictAllMissingTrainingColumn(t *testing.T) {
	td := filepath.Join("testdata", "fit")
	dir := t.TempDir()
	for _, algo := range []string{"linear", "gbdt"} {
		model := filepath.Join(dir, algo+".json")
		args := []string{"fit", "--data", filepath.Join(td, "all_missing.csv"), "--label", "y", "--task", "binary", "--algorithm", algo, "--out", model}
		if algo == "gbdt" {
			args = append(args, "--param", "min_data_in_leaf=1")
		}
		if code, _, errOut := atrium(t, args...); code != exitOK {
			t.Fatalf("fit %s: %s", algo, errOut)
		}
		code, _, errOut := atrium(t, "predict", "--model", model, "--data", filepath.Join(td, "all_missing_predict.csv"), "--out", filepath.Join(dir, algo+".csv"))
		if code != exitOK {
			t.Errorf("predict %s: exit %d, %s", algo, code, errOut)
		}
	}
}

// TestFitClassOnlyInValidation: without num_class, a class that only the
// validation file has is a class of the model (the count comes from both
// files), not an error about a row of the validation set.
func TestFitClassOnlyInValidation(t *testing.T) {
	td := filepath.Join("testdata", "fit")
	dir := t.TempDir()
	for _, algo := range []string{"gbdt", "linear"} {
		model := filepath.Join(dir, algo+".json")
		code, out, errOut := atrium(t, "fit", "--data", filepath.Join(td, "multi_train.csv"), "--valid", filepath.Join(td, "multi_valid.csv"),
			"--label", "y", "--task", "multiclass", "--algorithm", algo, "--out", model)
		if code != exitOK || !strings.Contains(out, "valid_multi_logloss=") {
			t.Errorf("%s: exit %d, summary %q, stderr %q", algo, code, out, errOut)
			continue
		}
		m, err := modelfile.Load(model)
		if err != nil {
			t.Fatal(err)
		}
		if m.NumOutputs() != 3 {
			t.Errorf("%s: %d classes, want 3", algo, m.NumOutputs())
		}
	}
}
