// Package reports writes script results in the formats graders import:
// JUnit XML (GitHub Classroom, most CI) and Gradescope's autograder
// results.json. It knows nothing of scripts: a Case is one graded test.
package reports

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Case is one graded script.
type Case struct {
	Name    string  // the script, "handshake-passive.pkt"
	Group   string  // what it grades, "server" or "client"; the JUnit classname
	Points  float64 // what it is worth; 0 counts as 1
	Passed  bool
	Skipped string  // set when it was not run, and why
	Failure string  // the first failure, "line 16: ..."
	Detail  string  // the failing line: expected, sent, the engine's explanation
	Seconds float64 // how long it ran (script time)
}

func (c *Case) worth() float64 {
	if c.Points == 0 {
		return 1
	}
	return c.Points
}

// Score is the points earned and the points possible.
func Score(cases []Case) (got, max float64) {
	for i := range cases {
		max += cases[i].worth()
		if cases[i].Passed {
			got += cases[i].worth()
		}
	}
	return got, max
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes cases as one JUnit test suite named suite.
func WriteJUnit(w io.Writer, suite string, cases []Case) error {
	s := junitSuite{Name: suite, Tests: len(cases)}
	var total float64
	for _, c := range cases {
		jc := junitCase{Classname: classname(suite, c.Group), Name: c.Name, Time: fmt.Sprintf("%.3f", c.Seconds)}
		total += c.Seconds
		switch {
		case c.Skipped != "":
			jc.Skipped = &junitSkipped{Message: c.Skipped}
			s.Skipped++
		case !c.Passed:
			jc.Failure = &junitFailure{Message: c.Failure, Type: "ScriptFailure", Text: c.Detail}
			s.Failures++
		}
		s.Cases = append(s.Cases, jc)
	}
	s.Time = fmt.Sprintf("%.3f", total)
	doc := junitSuites{Name: suite, Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func classname(suite, group string) string {
	name := strings.ReplaceAll(suite, " ", "_")
	if group != "" {
		name += "." + group
	}
	return name
}

// gradescope is Gradescope's autograder results.json.
type gradescope struct {
	Score         float64          `json:"score"`
	ExecutionTime float64          `json:"execution_time"`
	Output        string           `json:"output"`
	Tests         []gradescopeTest `json:"tests"`
}

type gradescopeTest struct {
	Name     string   `json:"name"`
	Number   string   `json:"number,omitempty"`
	Score    float64  `json:"score"`
	MaxScore float64  `json:"max_score"`
	Status   string   `json:"status"` // "passed" or "failed"
	Output   string   `json:"output"`
	Tags     []string `json:"tags,omitempty"`
}

// WriteGradescope writes cases as Gradescope's results.json.
func WriteGradescope(w io.Writer, cases []Case) error {
	got, max := Score(cases)
	doc := gradescope{Score: got, Output: fmt.Sprintf("%g of %g points", got, max), Tests: []gradescopeTest{}}
	for i, c := range cases {
		t := gradescopeTest{Name: c.Name, Number: fmt.Sprint(i + 1), MaxScore: c.worth(), Status: "failed"}
		if c.Group != "" {
			t.Name = c.Group + ": " + c.Name
			t.Tags = []string{c.Group}
		}
		doc.ExecutionTime += c.Seconds
		switch {
		case c.Skipped != "":
			t.Output = "not run: " + c.Skipped
		case c.Passed:
			t.Score, t.Status, t.Output = c.worth(), "passed", "passed"
		default:
			t.Output = c.Failure
			if c.Detail != "" {
				t.Output += "\n\n" + c.Detail
			}
		}
		doc.Tests = append(doc.Tests, t)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // packets read "> S." and "<mss 1460>", not \u003e
	return enc.Encode(doc)
}
