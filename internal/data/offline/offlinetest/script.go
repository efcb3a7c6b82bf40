package offlinetest

import (
	"fmt"
	"strings"
)

// separator ends a command's input and starts its expected output.
const separator = "----"

// command is one step of a case's script.
type command struct {
	// pos is "file:line" of the command line, for messages.
	pos   string
	name  string
	args  []string
	input []string
	// want is the expected output, lines joined by "\n" ("" for none).
	want string
}

// String returns the command line as written.
func (c command) String() string {
	return strings.Join(append([]string{c.name}, c.args...), " ")
}

// parseScript reads a case's script: commands separated by blank lines, each a
// command line, its input lines, a line "----" and the expected output lines, up
// to the next blank line or the end of the file. Lines starting with "#" between
// commands are comments. Input and output hold no blank lines (no output is
// written as "----" followed by a blank line).
func parseScript(file, text string) ([]command, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var cmds []command
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == separator {
			return nil, fmt.Errorf("%s:%d: %s without a command before it", file, i+1, separator)
		}
		f := strings.Fields(line)
		c := command{pos: fmt.Sprintf("%s:%d", file, i+1), name: f[0], args: f[1:]}
		i++
		for ; i < len(lines) && lines[i] != separator; i++ {
			if strings.TrimSpace(lines[i]) == "" {
				break
			}
			c.input = append(c.input, lines[i])
		}
		if i == len(lines) || lines[i] != separator {
			return nil, fmt.Errorf("%s: %q: no %s line before the next blank line or the end (every command needs one, even with no expected output)", c.pos, line, separator)
		}
		var want []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			want = append(want, lines[i])
		}
		c.want = strings.Join(want, "\n")
		cmds = append(cmds, c)
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("%s: no commands", file)
	}
	return cmds, nil
}
