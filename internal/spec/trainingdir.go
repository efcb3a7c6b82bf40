package spec

// TrainingDir is the directory of training specs inside a repository.
const TrainingDir = "training"

// LoadTrainings reads and checks every training/*.yaml (and *.yml) spec of
// the repository at dir, in file-name order, each named by its path
// relative to dir. Every problem of every file is returned at once; two
// specs of one name are a problem (the name is the study and the job). A
// repository without a training directory has none.
func LoadTrainings(dir string) ([]*Training, error) {
	names, srcs, err := readYAMLDir(dir, TrainingDir)
	if err != nil {
		return nil, err
	}
	var out []*Training
	var ps Problems
	seen := map[string]*Training{}
	for _, name := range names {
		t, err := ParseTraining(name, srcs[name])
		if err != nil {
			if more, ok := err.(Problems); ok {
				ps = append(ps, more...)
				continue
			}
			return nil, err
		}
		if prev := seen[t.Name]; prev != nil {
			ps = append(ps, t.Problem("name", "training spec name %q is also %s's, expected unique names", t.Name, prev.File))
			continue
		}
		seen[t.Name] = t
		out = append(out, t)
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
