package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/atrium-ml/atrium/internal/modeling/modelfile"
	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/tracking"
	"github.com/atrium-ml/atrium/internal/tracking/wire"
)

// Loader reads registered model versions: the version from the registry,
// its files from the artifact store (where the server's MLflow artifact
// proxy keeps what clients log). It is safe for concurrent use.
type Loader struct {
	Registry  *registry.Store
	Artifacts artifact.Store
	// MaxModelBytes bounds a model's data file. Default 1 GiB.
	MaxModelBytes int64
}

// DefaultMaxModelBytes is Loader.MaxModelBytes's default.
const DefaultMaxModelBytes = 1 << 30

// Version resolves a version of name: a version number, or "@alias" for an
// alias. An unknown model or version, or a missing alias, is ErrNotFound
// with a message saying what is missing.
func (l *Loader) Version(ctx context.Context, name, version string) (*registry.ModelVersion, error) {
	if alias, ok := strings.CutPrefix(version, "@"); ok {
		v, err := l.Registry.GetVersionByAlias(ctx, name, alias)
		if errors.Is(err, wire.ErrInvalid) && strings.Contains(err.Error(), "alias") && strings.Contains(err.Error(), "not found") {
			return nil, fmt.Errorf("%w: model %q has no alias %q: set it with MlflowClient().set_registered_model_alias(%q, %q, VERSION)",
				ErrNotFound, name, alias, name, alias)
		}
		return v, registryError(err, name, version)
	}
	v, err := l.Registry.GetModelVersion(ctx, name, version)
	return v, registryError(err, name, version)
}

// registryError maps the registry's not-found and invalid-name errors to
// ErrNotFound (a caller naming a model that does not exist).
func registryError(err error, name, version string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wire.ErrNotFound), errors.Is(err, wire.ErrInvalid):
		return fmt.Errorf("%w: model %q version %q: %v", ErrNotFound, name, version, err)
	}
	return fmt.Errorf("resolve model %q version %q: %w", name, version, err)
}

// Load resolves and loads a version of name (a number, or "@alias").
func (l *Loader) Load(ctx context.Context, name, version string) (*Deployed, error) {
	v, err := l.Version(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return l.LoadVersion(ctx, v)
}

// LoadURI loads models:/<name>/<version> or models:/<name>@<alias>.
func (l *Loader) LoadURI(ctx context.Context, uri string) (*Deployed, error) {
	name, version, err := ParseModelURI(uri)
	if err != nil {
		return nil, err
	}
	return l.Load(ctx, name, version)
}

// ParseModelURI splits models:/<name>/<version> or models:/<name>@<alias>
// into the model's name and the version as Load takes it (a number, or
// "@alias"). A URI of neither form is an ErrNotFound error naming the
// forms.
func ParseModelURI(uri string) (name, version string, err error) {
	bad := fmt.Errorf("%w: model URI %q: expected models:/<name>@<alias> or models:/<name>/<version>", ErrNotFound, uri)
	ref, ok := strings.CutPrefix(uri, "models:/")
	if !ok {
		return "", "", bad
	}
	if name, alias, ok := strings.Cut(ref, "@"); ok {
		if name == "" || alias == "" {
			return "", "", bad
		}
		return name, "@" + alias, nil
	}
	i := strings.LastIndexByte(ref, '/')
	if i <= 0 || i == len(ref)-1 {
		return "", "", bad
	}
	return ref[:i], ref[i+1:], nil
}

// LoadVersion loads a resolved version from its files.
func (l *Loader) LoadVersion(ctx context.Context, v *registry.ModelVersion) (*Deployed, error) {
	loc, err := l.Registry.DownloadURI(ctx, v.Name, v.Version)
	if err != nil {
		return nil, registryError(err, v.Name, v.Version)
	}
	return l.LoadFrom(ctx, v, loc)
}

// LoadFrom loads a resolved version from its files at loc, its download
// URI (a mlflow-artifacts:/ URI into l.Artifacts), and names the result
// after v. Registry is not used: a client of a remote registry resolves v
// and loc itself and reads the files through the server's artifact proxy.
func (l *Loader) LoadFrom(ctx context.Context, v *registry.ModelVersion, loc string) (*Deployed, error) {
	dir, ok := tracking.ProxiedPath(loc)
	if !ok {
		return nil, fmt.Errorf("%w: model %q version %s is stored at %s, outside this server's artifact store (mlflow-artifacts:/)",
			ErrModelFormat, v.Name, v.Version, loc)
	}
	d, err := l.LoadDir(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("load model %q version %s from %s: %w", v.Name, v.Version, loc, err)
	}
	d.Name, d.Version, d.Source = v.Name, v.Version, loc
	d.Stamp = registry.VersionStamp{Created: v.CreationTimestamp, Source: v.Source}
	d.Tags = make(map[string]string, len(v.Tags))
	for _, t := range v.Tags {
		d.Tags[t.Key] = t.Value
	}
	d.FeatureService = d.Tags[FeatureServiceTag]
	return d, nil
}

// LoadDir loads the MLflow model directory at dir of the artifact store:
// its MLmodel, then the data file of the first supported flavor
// (SupportedFlavors' order). Name and Version of the result are empty.
func (l *Loader) LoadDir(ctx context.Context, dir string) (*Deployed, error) {
	dir, err := artifact.CleanPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModelFormat, err)
	}
	mlm, err := l.read(ctx, path.Join(dir, MLmodelFile), 1<<20)
	if errors.Is(err, artifact.ErrNotFound) {
		return nil, fmt.Errorf("%w: no %s file: not an MLflow model directory", ErrModelFormat, MLmodelFile)
	}
	if err != nil {
		return nil, err
	}
	desc, err := parseMLmodel(mlm)
	if err != nil {
		return nil, err
	}
	flavor := ""
	for _, f := range SupportedFlavors {
		if _, ok := desc.Flavors[f]; ok {
			flavor = f
			break
		}
	}
	if flavor == "" {
		return nil, fmt.Errorf("%w: the model has flavor(s) %s; Atrium serves %s (log LightGBM and XGBoost Boosters with mlflow.lightgbm / mlflow.xgboost, or register an atrium fit model)",
			ErrUnsupportedFlavor, strings.Join(desc.flavorNames(), ", "), strings.Join(SupportedFlavors, ", "))
	}
	data := desc.flavorString(flavor, "data")
	if flavor == FlavorXGBoost && data == "" {
		data = "model.xgb" // mlflow.xgboost's default file name
	}
	if data == "" {
		return nil, fmt.Errorf("%w: flavors.%s names no data file", ErrModelFormat, flavor)
	}
	if err := checkNotPickle(flavor, data, desc.flavorString(flavor, "model_class")); err != nil {
		return nil, err
	}
	if flavor == FlavorAtrium {
		if v, ok := desc.Flavors[flavor]["flavor_version"].(uint64); ok && v > AtriumFlavorVersion {
			return nil, fmt.Errorf("%w: atrium flavor version %d, this atrium reads versions up to %d: upgrade it", ErrModelFormat, v, AtriumFlavorVersion)
		}
	}
	rel, err := artifact.CleanPath(data)
	if err != nil || rel == "" {
		return nil, fmt.Errorf("%w: flavors.%s.data %q is not a path inside the model directory", ErrModelFormat, flavor, data)
	}
	max := l.MaxModelBytes
	if max <= 0 {
		max = DefaultMaxModelBytes
	}
	body, err := l.read(ctx, path.Join(dir, rel), max)
	if errors.Is(err, artifact.ErrNotFound) {
		return nil, fmt.Errorf("%w: flavors.%s.data names %s, which the model directory lacks", ErrModelFormat, flavor, data)
	}
	if err != nil {
		return nil, err
	}
	m, err := modelfile.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (%s flavor): %w", ErrModelFormat, data, flavor, err)
	}
	if m.Source != flavor {
		return nil, fmt.Errorf("%w: %s of the %s flavor holds a %s model", ErrModelFormat, data, flavor, m.Source)
	}
	cols, err := desc.inputs()
	if err != nil {
		return nil, err
	}
	inputs, err := applySignature(m.Features, cols)
	if err != nil {
		return nil, err
	}
	return newDeployed("", "", flavor, m, inputs), nil
}

// checkNotPickle refuses a lightgbm or xgboost flavor whose data is a
// serialized scikit-learn API estimator rather than the library's own model
// file: mlflow.lightgbm.log_model of an LGBMClassifier writes model.pkl
// (cloudpickle) or, with MLflow 3, model.skops, and names the estimator's
// class in model_class. Serving never unpickles, and the class is the
// surer sign (the file name depends on MLflow's version and
// serialization_format), so either refuses the version as a flavor Atrium
// does not serve, not as a corrupt file: the fix is to log the Booster.
func checkNotPickle(flavor, data, class string) error {
	serialized := false
	switch strings.ToLower(path.Ext(data)) {
	case ".pkl", ".pickle", ".skops", ".cloudpickle", ".joblib":
		serialized = true
	}
	if !serialized && !sklearnEstimator(flavor, class) {
		return nil
	}
	what := data
	if class != "" {
		what = class + " in " + data
	}
	return fmt.Errorf("%w: flavors.%s holds a serialized scikit-learn API estimator (%s), not a %s model file; Atrium serves the library's own model file: log the Booster instead (mlflow.%s.log_model(model.booster_, ...) for a scikit-learn API estimator)",
		ErrUnsupportedFlavor, flavor, what, flavor, flavor)
}

// sklearnEstimator reports whether a lightgbm flavor's model_class names a
// scikit-learn API estimator (lightgbm.sklearn.LGBMClassifier, a subclass
// of LGBMModel elsewhere): mlflow.lightgbm writes the native model file only
// for a lightgbm.basic.Booster. The xgboost flavor is not judged by its
// class: mlflow.xgboost saves XGBClassifier in XGBoost's own format.
func sklearnEstimator(flavor, class string) bool {
	if flavor != FlavorLightGBM || class == "" {
		return false
	}
	name := class[strings.LastIndexByte(class, '.')+1:]
	return strings.HasPrefix(class, "lightgbm.sklearn.") || strings.HasPrefix(name, "LGBM")
}

// read reads a whole artifact of at most max bytes.
func (l *Loader) read(ctx context.Context, p string, max int64) ([]byte, error) {
	r, err := l.Artifacts.Get(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrModelFormat, p, max)
	}
	return b, nil
}
