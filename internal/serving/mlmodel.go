package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/atrium-ml/atrium/internal/modeling/ml"
	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
)

// An MLflow model directory holds an "MLmodel" file (YAML) naming the
// flavors the model can be loaded as, each with its data file, and the
// model's signature. This file reads what serving needs from it, and writes
// the directory of the atrium flavor.

// MLmodelFile is the name of the descriptor of an MLflow model directory.
const MLmodelFile = "MLmodel"

// Flavors this package serves, and the platform names ModelMetadata reports.
const (
	FlavorAtrium   = "atrium"
	FlavorLightGBM = "lightgbm"
	FlavorXGBoost  = "xgboost"
)

// SupportedFlavors lists the flavors Load serves, in the order it prefers
// them when a model has several.
var SupportedFlavors = []string{FlavorAtrium, FlavorLightGBM, FlavorXGBoost}

// AtriumFlavorVersion is the version of the atrium flavor's layout written
// by WriteMLmodelDir: flavors.atrium.flavor_version. Readers refuse newer
// versions.
const AtriumFlavorVersion = 1

// AtriumModelFile is the data file of the atrium flavor.
const AtriumModelFile = "model.json"

// LightGBMModelFile is the data file of the lightgbm flavor a tree model's
// directory also has (MLmodelFiles): LightGBM text, mlflow.lightgbm's name.
const LightGBMModelFile = "model.lgb"

// mlmodel is the part of an MLmodel file serving reads. MLflow writes more
// (utc_time_created, mlflow_version, python_function's env...), which is
// ignored: the decoder is not strict.
type mlmodel struct {
	ArtifactPath string                    `yaml:"artifact_path"`
	ModelID      string                    `yaml:"model_id"`
	Flavors      map[string]map[string]any `yaml:"flavors"`
	Signature    *signature                `yaml:"signature"`
}

// signature holds MLflow's model signature: inputs and outputs are JSON
// strings inside the YAML (mlflow.models.signature.ModelSignature.to_dict).
type signature struct {
	Inputs  string `yaml:"inputs"`
	Outputs string `yaml:"outputs"`
}

// colSpec is one entry of a signature's inputs: a named column (type
// "double", "long", "string"...) or, for array inputs, a tensor.
type colSpec struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	TensorSpec *struct {
		Dtype string  `json:"dtype"`
		Shape []int64 `json:"shape"`
	} `json:"tensor-spec"`
}

// parseMLmodel decodes an MLmodel file. Anchors and aliases are refused
// before decoding: the decoder expands aliases, so a few hundred bytes of
// nested aliases (a "billion laughs") would take seconds and hundreds of MiB,
// and MLflow never writes them (it dumps with PyYAML's default Dumper and
// plain dicts, which share no nodes).
func parseMLmodel(data []byte) (*mlmodel, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid YAML: %v", ErrModelFormat, MLmodelFile, err)
	}
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		var found refusedNode
		ast.Walk(&found, doc.Body)
		if found.node != nil {
			tok := found.node.GetToken()
			return nil, fmt.Errorf("%w: %s line %d: YAML anchors and aliases are not accepted (MLflow does not write them)", ErrModelFormat, MLmodelFile, tok.Position.Line)
		}
	}
	var m mlmodel
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s is not valid YAML: %v", ErrModelFormat, MLmodelFile, err)
	}
	if len(m.Flavors) == 0 {
		return nil, fmt.Errorf("%w: %s names no flavors", ErrModelFormat, MLmodelFile)
	}
	return &m, nil
}

// refusedNode is an ast.Visitor keeping the first anchor or alias it meets.
type refusedNode struct{ node ast.Node }

func (r *refusedNode) Visit(n ast.Node) ast.Visitor {
	if r.node != nil || n == nil {
		return nil
	}
	switch n.Type() {
	case ast.AnchorType, ast.AliasType:
		r.node = n
		return nil
	}
	return r
}

// flavorNames lists a model's flavors, sorted.
func (m *mlmodel) flavorNames() []string {
	names := make([]string, 0, len(m.Flavors))
	for f := range m.Flavors {
		names = append(names, f)
	}
	sort.Strings(names)
	return names
}

// flavorString returns a string field of a flavor's configuration.
func (m *mlmodel) flavorString(flavor, key string) string {
	s, _ := m.Flavors[flavor][key].(string)
	return s
}

// inputs decodes the signature's inputs; nil when the model has no
// signature (MLflow logs one only when given an input example or a
// signature).
func (m *mlmodel) inputs() ([]colSpec, error) {
	if m.Signature == nil || strings.TrimSpace(m.Signature.Inputs) == "" {
		return nil, nil
	}
	var cols []colSpec
	if err := json.Unmarshal([]byte(m.Signature.Inputs), &cols); err != nil {
		return nil, fmt.Errorf("%w: %s signature.inputs is not a JSON list of column specs: %v", ErrModelFormat, MLmodelFile, err)
	}
	return cols, nil
}

// applySignature names a model's features from its MLflow signature, and
// checks the signature's types against the features' kinds.
//
// A signature of named columns (a pandas DataFrame's) gives the names the
// clients send, which the model file may not have: LightGBM trained on a
// numpy array writes Column_0, Column_1...; XGBoost writes f0, f1... So when
// the signature names every column and their count is the model's, its
// names win. A tensor signature (a numpy array's) names nothing: its width,
// when fixed, must be the model's feature count.
func applySignature(features []ml.Feature, cols []colSpec) ([]ml.Feature, error) {
	if len(cols) == 0 {
		return features, nil
	}
	if len(cols) == 1 && cols[0].Type == "tensor" && cols[0].TensorSpec != nil {
		sh := cols[0].TensorSpec.Shape
		if len(sh) == 2 && sh[1] >= 0 && int(sh[1]) != len(features) {
			return nil, fmt.Errorf("%w: the signature's input tensor has %d columns, the model %d features", ErrModelFormat, sh[1], len(features))
		}
		return features, nil
	}
	if len(cols) != len(features) {
		return nil, fmt.Errorf("%w: the signature has %d inputs, the model file %d features", ErrModelFormat, len(cols), len(features))
	}
	out := make([]ml.Feature, len(features))
	copy(out, features)
	seen := make(map[string]bool, len(cols))
	for i, c := range cols {
		if c.Name == "" {
			return features, nil // unnamed columns: keep the model's names
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("%w: the signature names input %q twice", ErrModelFormat, c.Name)
		}
		seen[c.Name] = true
		switch c.Type {
		case "string", "binary":
			if features[i].Kind != ml.Categorical {
				return nil, fmt.Errorf("%w: signature input %q is %s, but feature %d of the model (%q) is numeric", ErrModelFormat, c.Name, c.Type, i, features[i].Name)
			}
		case "datetime", "array", "object", "map", "tensor":
			return nil, fmt.Errorf("%w: signature input %q is of type %s; served models take numbers and categories", ErrModelFormat, c.Name, c.Type)
		}
		out[i].Name = c.Name
	}
	return out, nil
}

// WriteMLmodelDir writes m as an MLflow model directory of the atrium flavor
// into dir (created if missing): model.json (modelfile's format) and an
// MLmodel with the flavor and a signature of named columns, so that the
// version's inputs are known without reading the model. `atrium fit
// --register` uploads that directory as the logged model's artifacts.
func WriteMLmodelDir(dir string, m *modelfile.Model) error {
	files, err := MLmodelFiles(m, time.Now())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write model directory %s: %w", dir, err)
	}
	for _, name := range ModelDirOrder(files) {
		if err := modelfile.WriteFileAtomic(filepath.Join(dir, name), files[name]); err != nil {
			return err
		}
	}
	return nil
}

// ModelDirOrder lists the files of a model directory (MLmodelFiles) in the
// order to store them: the data files, then MLmodel, so that a directory
// whose MLmodel is visible is whole.
func ModelDirOrder(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for name := range files {
		if name != MLmodelFile {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return append(names, MLmodelFile)
}

// PutMLmodel stores m's model directory (MLmodelFiles) under dir of an
// artifact store: model.json first, MLmodel last, so that a directory whose
// MLmodel is visible is whole.
func PutMLmodel(ctx context.Context, store artifact.Store, dir string, m *modelfile.Model) error {
	files, err := MLmodelFiles(m, time.Now())
	if err != nil {
		return err
	}
	for _, name := range ModelDirOrder(files) {
		p := name
		if dir != "" {
			p = dir + "/" + name
		}
		if err := store.Put(ctx, p, bytes.NewReader(files[name])); err != nil {
			return fmt.Errorf("store model file %s: %w", p, err)
		}
	}
	return nil
}

// MLmodelFiles returns the files of m's model directory by name: model.json
// and MLmodel, written at created, and for a tree model model.lgb, the same
// trees as LightGBM text, under the lightgbm and python_function flavors:
// mlflow.lightgbm.load_model and mlflow.pyfunc.load_model then load the
// version as a lightgbm.Booster, predicting what Atrium predicts. The
// MLmodel reads:
//
//	flavors:
//	  atrium:
//	    data: model.json
//	    flavor_version: 1
//	    format_version: 1        # modelfile.FormatVersion
//	    task: binary
//	    algorithm: gbdt
//	  lightgbm:                  # tree models only
//	    data: model.lgb
//	    model_class: lightgbm.basic.Booster
//	  python_function:           # tree models only
//	    loader_module: mlflow.lightgbm
//	    data: model.lgb
//	signature:
//	  inputs: '[{"name": "price", "type": "double"}, {"name": "city", "type": "string"}]'
//	  outputs: '[{"name": "prediction", "type": "double"}]'
//	utc_time_created: '2026-01-02 03:04:05.000000'
func MLmodelFiles(m *modelfile.Model, created time.Time) (map[string][]byte, error) {
	data, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("write atrium model: %w", err)
	}
	ins := make([]map[string]string, len(m.Features))
	for i, f := range m.Features {
		t := "double"
		if f.Kind == ml.Categorical {
			t = "string"
		}
		ins[i] = map[string]string{"name": f.Name, "type": t}
	}
	outs := make([]map[string]string, 0, m.NumOutputs())
	for _, n := range m.OutputNames() {
		outs = append(outs, map[string]string{"name": n, "type": "double"})
	}
	in, _ := json.Marshal(ins) // maps of strings always encode
	out, _ := json.Marshal(outs)
	flavors := map[string]any{FlavorAtrium: map[string]any{
		"data": AtriumModelFile, "flavor_version": AtriumFlavorVersion,
		"format_version": modelfile.FormatVersion, "task": m.Task, "algorithm": m.Algorithm,
	}}
	files := map[string][]byte{AtriumModelFile: data}
	if m.Algorithm == modelfile.AlgorithmGBDT {
		lgb, err := m.MarshalLightGBM()
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", LightGBMModelFile, err)
		}
		files[LightGBMModelFile] = lgb
		// Readers that know the atrium flavor prefer it (SupportedFlavors);
		// these two are for MLflow's own loaders.
		flavors[FlavorLightGBM] = map[string]any{"data": LightGBMModelFile, "model_class": "lightgbm.basic.Booster"}
		flavors["python_function"] = map[string]any{"loader_module": "mlflow.lightgbm", "data": LightGBMModelFile}
	}
	doc := map[string]any{
		"flavors":          flavors,
		"signature":        map[string]any{"inputs": string(in), "outputs": string(out)},
		"utc_time_created": created.UTC().Format("2006-01-02 15:04:05.000000"),
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", MLmodelFile, err)
	}
	files[MLmodelFile] = y
	return files, nil
}
