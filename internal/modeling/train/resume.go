package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/atrium-ml/atrium/internal/tracking"
)

// ErrResume marks a --resume that cannot continue a study: there is no
// interrupted one, or the spec changed since it started in a way that
// makes the new trials incomparable with the old ones. The study and its
// parent run are left as they were.
var ErrResume = errors.New("cannot resume")

// TagStudyPrefix + a part's name ("atrium.study.split") is a tag of a
// study's parent run holding what of the spec makes its trials comparable:
// --resume refuses a spec whose parts differ (see studyParts).
const TagStudyPrefix = "atrium.study."

// maxPartTag bounds a part's tag value: a longer part (a large search
// space) is stored as its sha256, which still tells a change.
const maxPartTag = 1000

// studyPart is one thing of the spec that makes a study's trials
// comparable, as text.
type studyPart struct{ name, value string }

// studyParts are what of the spec makes a study's trials comparable: the
// same training set (the spine's file and columns, the features in input
// order), the same split, the same learner and fixed parameters, the same
// metric and direction, the same search space. The trial budget, the
// parallelism, the sampler and the pruner may change on --resume.
func studyParts(o *Options, res *Result) []studyPart {
	t := o.Spec
	js := func(v any) string {
		b, _ := json.Marshal(v) // the spec's plain data always encodes
		return string(b)
	}
	var space any
	if t.Tune != nil {
		space = t.Tune.Space
	}
	parts := []studyPart{
		{"spine", js(t.Spine)},
		{"features", strings.Join(res.Fingerprint.Features, ",")},
		{"split", js(t.Split)},
		{"model", js(t.Model)},
		{"metric", direction(t.Maximize()) + " " + t.Metric()},
		{"space", js(space)},
	}
	for i, p := range parts {
		if len(p.value) > maxPartTag {
			sum := sha256.Sum256([]byte(p.value))
			parts[i].value = "sha256:" + hex.EncodeToString(sum[:])
		}
	}
	return parts
}

// studyTags are the parts as the parent run's tags.
func studyTags(parts []studyPart) []tracking.KV {
	kv := make([]tracking.KV, len(parts))
	for i, p := range parts {
		kv[i] = tracking.KV{Key: TagStudyPrefix + p.name, Value: p.value}
	}
	return kv
}

// checkStudyParts compares the spec's parts with those a study's parent
// run was tagged with when it started, returning an ErrResume error that
// names every part that changed. A run without the tags (a study started
// before they were written) is not checked.
func checkStudyParts(study string, parts []studyPart, tags []tracking.KV) error {
	var names, diffs []string
	for _, p := range parts {
		was, ok := "", false
		for _, kv := range tags {
			if kv.Key == TagStudyPrefix+p.name {
				was, ok = kv.Value, true
			}
		}
		if !ok || was == p.value {
			continue
		}
		names = append(names, p.name)
		diffs = append(diffs, fmt.Sprintf("%s was %s, now %s", p.name, was, p.value))
	}
	if len(names) == 0 {
		return nil
	}
	return resumeError(fmt.Sprintf("--resume: the spec's %s changed since the study %s started (%s): its trials would not be comparable; start a new study without --resume",
		joinAnd(names), study, strings.Join(diffs, "; ")))
}

// resumeError is an ErrResume error with its whole message.
type resumeError string

func (e resumeError) Error() string { return string(e) }

// Is makes errors.Is(err, ErrResume) true.
func (e resumeError) Is(target error) bool { return target == ErrResume }

func direction(maximize bool) string {
	if maximize {
		return "maximize"
	}
	return "minimize"
}

// joinAnd joins names as "a, b and c".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// beforeTrials marks an error that came before this process ran any trial
// of the study: the study is as it was, and a resumed parent run stays
// RUNNING so that it can still be resumed.
type beforeTrials struct{ error }

func (e beforeTrials) Unwrap() error { return e.error }
