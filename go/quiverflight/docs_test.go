package quiverflight_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every Go block of the repository's README and of this package's README is a piece of
// example_test.go (compiled by go test and checked by go vet), so the docs cannot rot.
func TestEveryGoSnippetInTheDocsIsCompiledExampleCode(t *testing.T) {
	examples, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	normalize := func(text string) string {
		var lines []string
		for _, line := range strings.Split(text, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				lines = append(lines, line)
			}
		}
		return strings.Join(lines, "\n")
	}
	compiled := normalize(string(examples))
	block := regexp.MustCompile("(?s)```go\n(.*?)```")
	seen := 0
	for _, doc := range []string{"../../README.md", "README.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, match := range block.FindAllStringSubmatch(string(text), -1) {
			seen++
			if !strings.Contains(compiled, normalize(match[1])) {
				t.Errorf("a Go block of %s is not in example_test.go:\n%s", doc, match[1])
			}
		}
	}
	if seen < 2 {
		t.Errorf("found %d Go blocks in the READMEs; expected the repository's and this package's", seen)
	}
}
