package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"gopkg.in/yaml.v3"
)

// Package is the Rego package placement policies define, and Path the
// decision path of the decision log.
const (
	Package = "cloudmux.placement"
	Path    = "cloudmux/placement"
)

var (
	denyRef  = ast.MustParseRef("data." + Package + ".deny")
	scoreRef = ast.MustParseRef("data." + Package + ".score")
)

// Bundle is one upload: Rego modules, their tests, and data documents,
// each keyed by file name. Data is merged into the root of `data`.
type Bundle struct {
	Modules map[string]string `json:"modules"`
	Tests   map[string]string `json:"tests,omitempty"`
	Data    map[string]any    `json:"data,omitempty"`
}

// Hash is the bundle's content address: the same files and data give the
// same version, whatever the upload order.
func (b Bundle) Hash() string {
	// encoding/json sorts map keys, so this is canonical.
	raw, _ := json.Marshal(struct {
		M map[string]string `json:"m"`
		T map[string]string `json:"t"`
		D map[string]any    `json:"d"`
	}{b.Modules, b.Tests, b.Data})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// IsTestFile says whether a file name is a Rego test file, as opa test
// decides by convention.
func IsTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// Validate checks the bundle's shape (not its Rego).
func (b Bundle) Validate() error {
	var errs []error
	if len(b.Modules) == 0 {
		errs = append(errs, fmt.Errorf("%w: modules: at least one Rego module is needed", ErrInvalid))
	}
	for _, group := range []map[string]string{b.Modules, b.Tests} {
		for name := range group {
			if name == "" || !strings.HasSuffix(name, ".rego") || strings.ContainsAny(name, "\\\x00") {
				errs = append(errs, fmt.Errorf("%w: %q: file names end in .rego", ErrInvalid, name))
			}
		}
	}
	for name := range b.Tests {
		if _, dup := b.Modules[name]; dup {
			errs = append(errs, fmt.Errorf("%w: %q is both a module and a test", ErrInvalid, name))
		}
	}
	return errors.Join(errs...)
}

// parse parses every file of files, collecting every parse error with its
// position.
func parse(files map[string]string, into map[string]*ast.Module, pos *[]Position) {
	for _, name := range slices.Sorted(maps.Keys(files)) {
		m, err := ast.ParseModuleWithOpts(name, files[name], ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			*pos = append(*pos, positions(err, name)...)
			continue
		}
		into[name] = m
	}
}

// positions turns OPA errors into positions; an error without a location
// is pinned to file.
func positions(err error, file string) []Position {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return []Position{{File: file, Message: err.Error()}}
	}
	out := make([]Position, 0, len(errs))
	for _, e := range errs {
		p := Position{File: file, Message: e.Message}
		if e.Location != nil {
			p.Row, p.Col = e.Location.Row, e.Location.Col
			if e.Location.File != "" {
				p.File = e.Location.File
			}
		}
		out = append(out, p)
	}
	return out
}

// compiled is a policy version ready to evaluate.
type compiled struct {
	version string
	plan    plan
	// query is the pool form's decision query.
	query rego.PreparedEvalQuery
	// The per-peer form's queries: request_deny once per decision, deny
	// and score over a batch of peers (input.batch), and deny and score
	// for one peer (input.peer), the common case of a decision after a
	// capacity report: without a comprehension and "with", a third
	// cheaper.
	requestQuery, denyQuery, scoreQuery, denyOne, scoreOne rego.PreparedEvalQuery
	// denyNarrow and scoreNarrow narrow the peer part of the passes' keys
	// by the request (narrow.go); nil when nothing can narrow them.
	denyNarrow, scoreNarrow *narrower
	// verdicts caches the per-peer form's verdicts by what they read.
	verdicts verdictCache
	denials  requestDenials
	recent   recentShapes
	reqsMu   sync.Mutex
	reqs     map[string]*reqPart // request parts of keys, interned
	// evaluated counts the per-peer evaluations (passes times peers, in
	// decisions and in the background): what the cache did not answer.
	evaluated atomic.Int64
}

// compile parses and compiles b's modules (tests included, so a test that
// does not compile is refused too) and prepares the decision query over
// the modules alone. Every problem comes back as a CompileError.
func compile(ctx context.Context, version string, b Bundle) (*compiled, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	var pos []Position
	mods, all := map[string]*ast.Module{}, map[string]*ast.Module{}
	parse(b.Modules, mods, &pos)
	parse(b.Tests, all, &pos)
	if len(pos) > 0 {
		return nil, &CompileError{Kind: ErrCompile, Positions: pos}
	}
	maps.Copy(all, mods)
	// Tests are compiled with the modules, so a broken test is refused
	// too, but evaluated only by RunTests: they are not policy.
	withTests := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if withTests.Compile(all); withTests.Failed() {
		return nil, &CompileError{Kind: ErrCompile, Positions: positions(withTests.Errors, "")}
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(mods); c.Failed() {
		return nil, &CompileError{Kind: ErrCompile, Positions: positions(c.Errors, "")}
	}
	p := analyze(c)
	if !p.deny && !p.score {
		return nil, &CompileError{Kind: ErrCompile, Positions: []Position{{Message: "no module defines " + denyRef.String() + " or " + scoreRef.String() + " (package " + Package + ")"}}}
	}
	if msgs := p.misreads(); len(msgs) > 0 {
		// Evaluated, such a rule would be undefined for every peer: a
		// deny that never denies, silently.
		var pos []Position
		for _, m := range msgs {
			pos = append(pos, Position{Message: m})
		}
		return nil, &CompileError{Kind: ErrCompile, Positions: pos}
	}
	data := b.Data
	if data == nil {
		data = map[string]any{}
	}
	store := inmem.NewFromObject(data)
	prepare := func(query string) (rego.PreparedEvalQuery, error) {
		return rego.New(
			rego.Compiler(c),
			rego.Store(store),
			rego.Query(query),
			// Results stay OPA terms: the engine reads them directly instead of
			// paying for a conversion to Go maps on every decision.
			rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
		).PrepareForEval(ctx)
	}
	out := &compiled{version: version, plan: p}
	var queries []*rego.PreparedEvalQuery
	var texts []string
	add := func(q *rego.PreparedEvalQuery, text string) { queries, texts = append(queries, q), append(texts, text) }
	if p.perPeer {
		// An undefined request_deny (a complete rule whose body fails) is
		// no reason: the array holds it when defined.
		add(&out.requestQuery, "request_deny = [x | x := "+requestDenyRef.String()+"]")
		// Each peer's evaluation replaces the whole input: "with
		// input.peer as p" would copy the input, batch and all, per peer.
		add(&out.denyQuery, "deny = {i: x | r := input.request; some i, p in input.batch; x := "+denyRef.String()+` with input as {"request": r, "peer": p}}`)
		add(&out.scoreQuery, "score = {i: x | r := input.request; pl := input.pool; some i, p in input.batch; x := "+scoreRef.String()+` with input as {"request": r, "peer": p, "pool": pl}}`)
		add(&out.denyOne, "deny = "+denyRef.String())
		add(&out.scoreOne, "score = "+scoreRef.String())
		if p.cacheable {
			out.denyNarrow = newNarrower(ctx, c, store, rulesOf(c, denyRef))
			out.scoreNarrow = newNarrower(ctx, c, store, rulesOf(c, scoreRef))
		}
	} else {
		var query []string
		if p.deny {
			query = append(query, "deny = "+denyRef.String())
		}
		if p.score {
			query = append(query, "score = "+scoreRef.String())
		}
		add(&out.query, strings.Join(query, "; "))
	}
	for i, q := range queries {
		var err error
		if *q, err = prepare(texts[i]); err != nil {
			return nil, &CompileError{Kind: ErrCompile, Positions: positions(err, "")}
		}
	}
	return out, nil
}

// TestResult is one Rego test's outcome.
type TestResult struct {
	Package  string        `json:"package"`
	Name     string        `json:"name"`
	File     string        `json:"file,omitempty"`
	Row      int           `json:"row,omitempty"`
	Pass     bool          `json:"pass"`
	Skip     bool          `json:"skip,omitempty"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Fixtures is data every test run sees at data.cloudmux.fixtures: sample
// peers and requests to write tests against (see stock/cloudmux/fixtures/data.json).
func Fixtures() map[string]any {
	var f map[string]any
	if err := json.Unmarshal(stockFixtures, &f); err != nil {
		panic("policy: stock fixtures: " + err.Error())
	}
	return f
}

// RunTests runs the bundle's Rego tests the way `opa test` does (OPA's
// tester: every rule named test_* in every module, modules and data
// loaded), with the stock fixtures at data.cloudmux.fixtures unless the
// bundle's data defines its own. Compile errors come back as a
// CompileError; failing tests as results with Pass false.
func RunTests(ctx context.Context, b Bundle) ([]TestResult, error) {
	var pos []Position
	mods := map[string]*ast.Module{}
	parse(b.Modules, mods, &pos)
	parse(b.Tests, mods, &pos)
	if len(pos) > 0 {
		return nil, &CompileError{Kind: ErrCompile, Positions: pos}
	}
	data := map[string]any{}
	maps.Copy(data, b.Data)
	cm, _ := data["cloudmux"].(map[string]any)
	if cm == nil {
		cm = map[string]any{}
	} else {
		cm = maps.Clone(cm)
	}
	if _, ok := cm["fixtures"]; !ok {
		cm["fixtures"] = Fixtures()
	}
	data["cloudmux"] = cm
	store := inmem.NewFromObject(data)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Abort(ctx, txn)
	ch, err := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1).WithEnablePrintStatements(true)).
		SetStore(store).SetModules(mods).SetTimeout(30*time.Second).SetDefaultRegoVersion(ast.RegoV1).
		RunTests(ctx, txn)
	if err != nil {
		return nil, &CompileError{Kind: ErrCompile, Positions: positions(err, "")}
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Package: strings.TrimPrefix(r.Package, "data."), Name: r.Name, Pass: r.Pass(), Skip: r.Skip, Duration: r.Duration}
		if r.Location != nil {
			tr.File, tr.Row = r.Location.File, r.Location.Row
		}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		} else if r.Fail && r.FailedAt != nil {
			tr.Error = "failed at " + r.FailedAt.String()
		} else if r.Fail {
			tr.Error = "the test body is false or undefined"
		}
		out = append(out, tr)
	}
	slices.SortFunc(out, func(a, b TestResult) int {
		return strings.Compare(a.File+fmt.Sprintf("%08d", a.Row)+a.Name, b.File+fmt.Sprintf("%08d", b.Row)+b.Name)
	})
	return out, ctx.Err()
}

// failedTests turns failing results into a CompileError of kind
// ErrTestsFailed, nil when all pass.
func failedTests(results []TestResult) error {
	var pos []Position
	for _, r := range results {
		if !r.Pass && !r.Skip {
			msg := r.Package + "." + r.Name + " fails"
			if r.Error != "" {
				msg += ": " + r.Error
			}
			pos = append(pos, Position{File: r.File, Row: r.Row, Col: 1, Message: msg})
		}
	}
	if len(pos) == 0 {
		return nil
	}
	return &CompileError{Kind: ErrTestsFailed, Positions: pos}
}

// LoadDir reads a policy directory as `opa test DIR` would: *.rego files
// are modules (*_test.rego are tests), *.json and *.yaml files are data
// documents merged at their directory's path (a/b/data.json is data.a.b).
// File names in the bundle are paths relative to the directory.
func LoadDir(fsys fs.FS) (Bundle, error) {
	b := Bundle{Modules: map[string]string{}, Tests: map[string]string{}, Data: map[string]any{}}
	var errs []error
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		ext := path.Ext(p)
		if ext != ".rego" && ext != ".json" && ext != ".yaml" && ext != ".yml" {
			return nil
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		switch {
		case IsTestFile(p):
			b.Tests[p] = string(raw)
		case ext == ".rego":
			b.Modules[p] = string(raw)
		default:
			var doc any
			if ext == ".json" {
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.UseNumber()
				err = dec.Decode(&doc)
			} else {
				err = yaml.Unmarshal(raw, &doc)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: %v", ErrInvalid, p, err))
				return nil
			}
			if err := mergeAt(b.Data, path.Dir(p), doc); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: %v", ErrInvalid, p, err))
			}
		}
		return nil
	})
	if err != nil {
		return Bundle{}, err
	}
	return b, errors.Join(errs...)
}

// mergeAt merges doc into data at dir ("." is the root); doc must be an
// object.
func mergeAt(data map[string]any, dir string, doc any) error {
	m, ok := doc.(map[string]any)
	if !ok {
		return errors.New("a data document must be an object")
	}
	at := data
	if dir != "." {
		for seg := range strings.SplitSeq(dir, "/") {
			next, ok := at[seg].(map[string]any)
			if !ok {
				if _, taken := at[seg]; taken {
					return fmt.Errorf("data path %s is already a value", dir)
				}
				next = map[string]any{}
				at[seg] = next
			}
			at = next
		}
	}
	for k, v := range m {
		if _, taken := at[k]; taken {
			return fmt.Errorf("key %q is defined twice", k)
		}
		at[k] = v
	}
	return nil
}
