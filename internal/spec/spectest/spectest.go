// Package spectest builds spec files for tests of the packages that check
// them (spec's own parsing, train's checks against the learners).
package spectest

import "strings"

// TrainingSrc is a training spec with the given model (at line 5), search
// space (one parameter a line from line 8; none: a one-trial tune block)
// and register block (after the space, when not empty).
func TrainingSrc(model string, space []string, register string) string {
	src := "name: x\nfeatures: {service: s}\nspine: {path: s.csv, timestamp: ts, label: y}\nsplit: {by: random, valid: 0.2, test: 0.2}\n" +
		"model: " + model + "\ntune:\n  space:\n"
	for _, p := range space {
		src += "    " + p + "\n"
	}
	if len(space) == 0 {
		src = strings.TrimSuffix(src, "  space:\n") + "  trials: 1\n"
	}
	if register != "" {
		src += "register: " + register + "\n"
	}
	return src
}
