package server

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
)

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParam    `json:"parameters"`
		Responses  map[string]json.RawMessage `json:"responses"`
		Schemas    map[string]map[string]any  `json:"schemas"`
		Headers    map[string]map[string]any  `json:"headers"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPIOp struct {
	Permission string                     `json:"x-spool-permission"`
	Parameters []openAPIParam             `json:"parameters"`
	Responses  map[string]json.RawMessage `json:"responses"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	dec := json.NewDecoder(strings.NewReader(string(openAPI)))
	require.NoError(t, dec.Decode(&doc), "openapi.json must parse")
	require.Equal(t, "3.1.0", doc.OpenAPI)
	return &doc
}

func newInternalServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	s, err := New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// The document lists exactly the routes the server registers, with their
// path and query parameters.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	s := newInternalServer(t, Config{})

	var inDoc, inMux []string
	for p, item := range doc.Paths {
		for key := range item {
			if slices.Contains(httpMethods, key) {
				inDoc = append(inDoc, strings.ToUpper(key)+" "+p)
			}
		}
	}
	for _, rt := range s.routes {
		if !rt.page {
			inMux = append(inMux, rt.method+" "+rt.pattern)
		}
	}
	sort.Strings(inDoc)
	sort.Strings(inMux)
	require.Equal(t, inMux, inDoc, "routes and openapi.json differ")

	pathParam := regexp.MustCompile(`\{([a-z_]+)\}`)
	for _, rt := range s.routes {
		if rt.page {
			continue
		}
		item := doc.Paths[rt.pattern]
		var op openAPIOp
		require.NoError(t, json.Unmarshal(item[strings.ToLower(rt.method)], &op))
		var shared []openAPIParam
		if raw, ok := item["parameters"]; ok {
			require.NoError(t, json.Unmarshal(raw, &shared))
		}
		var query, path []string
		for _, p := range append(shared, op.Parameters...) {
			if p.Ref != "" {
				name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
				var ok bool
				p, ok = doc.Components.Parameters[name]
				require.True(t, ok, "%s %s: unresolved %s", rt.method, rt.pattern, name)
			}
			switch p.In {
			case "query":
				query = append(query, p.Name)
			case "path":
				path = append(path, p.Name)
			}
		}
		var wantPath []string
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			wantPath = append(wantPath, m[1])
		}
		wantQuery := slices.Clone(rt.query)
		sort.Strings(query)
		sort.Strings(wantQuery)
		require.Equal(t, wantQuery, query, "%s %s: query parameters", rt.method, rt.pattern)
		require.Equal(t, wantPath, path, "%s %s: path parameters", rt.method, rt.pattern)

		// Every operation answers something in 2xx; its error answers
		// use the error shape.
		has2xx := false
		for code, raw := range op.Responses {
			if code[0] == '2' {
				has2xx = true
				continue
			}
			var ref struct {
				Ref string `json:"$ref"`
			}
			require.NoError(t, json.Unmarshal(raw, &ref))
			require.True(t, strings.HasPrefix(ref.Ref, "#/components/responses/"), "%s %s %s: error answers refer to a shared response", rt.method, rt.pattern, code)
			resp := doc.Components.Responses[strings.TrimPrefix(ref.Ref, "#/components/responses/")]
			require.Contains(t, string(resp), `"#/components/schemas/ErrorBody"`)
		}
		require.True(t, has2xx, "%s %s: no success answer", rt.method, rt.pattern)

		// The permission is the route table's; an operation that needs a
		// key documents 401, 403 and 429.
		require.Equal(t, string(rt.perm), op.Permission, "%s %s: x-spool-permission", rt.method, rt.pattern)
		if rt.perm != auth.Public {
			for _, code := range []string{"401", "403", "429"} {
				require.Contains(t, op.Responses, code, "%s %s: needs a key, so documents %s", rt.method, rt.pattern, code)
			}
		}
	}
}

// Every $ref of the document resolves.
func TestOpenAPIRefsResolve(t *testing.T) {
	t.Parallel()
	var doc any
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					ref := x.(string)
					require.True(t, strings.HasPrefix(ref, "#/"), ref)
					cur := any(doc)
					for _, part := range strings.Split(ref[2:], "/") {
						m, ok := cur.(map[string]any)
						require.True(t, ok, "unresolved %s", ref)
						cur, ok = m[part]
						require.True(t, ok, "unresolved %s", ref)
					}
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// The schemas match the wire types: same field names, JSON types, and
// for answers, required exactly where the field is always present.
func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	type wire struct {
		t      reflect.Type
		answer bool // sent by the server: required == always present
	}
	schemas := map[string]wire{
		"Job":                 {reflect.TypeFor[spool.Job](), true},
		"Lease":               {reflect.TypeFor[spool.Lease](), true},
		"AttemptError":        {reflect.TypeFor[spool.AttemptError](), true},
		"Progress":            {reflect.TypeFor[spool.Progress](), true},
		"Backoff":             {reflect.TypeFor[spool.Backoff](), true},
		"EnqueueRequest":      {reflect.TypeFor[spool.EnqueueRequest](), false},
		"BatchEnqueueRequest": {reflect.TypeFor[spool.BatchEnqueueRequest](), false},
		"JobsResponse":        {reflect.TypeFor[spool.JobsResponse](), true},
		"JobIDsResponse":      {reflect.TypeFor[spool.JobIDsResponse](), true},
		"JobList":             {reflect.TypeFor[spool.JobList](), true},
		"LeaseRequest":        {reflect.TypeFor[spool.LeaseRequest](), false},
		"HeartbeatRequest":    {reflect.TypeFor[spool.HeartbeatRequest](), false},
		"ProgressUpdate":      {reflect.TypeFor[spool.ProgressUpdate](), false},
		"HeartbeatResponse":   {reflect.TypeFor[spool.HeartbeatResponse](), true},
		"CompleteRequest":     {reflect.TypeFor[spool.CompleteRequest](), false},
		"FailRequest":         {reflect.TypeFor[spool.FailRequest](), false},
		"ReleaseRequest":      {reflect.TypeFor[spool.ReleaseRequest](), false},
		"Ack":                 {reflect.TypeFor[spool.Ack](), false},
		"AcksRequest":         {reflect.TypeFor[spool.AcksRequest](), false},
		"AckResult":           {reflect.TypeFor[spool.AckResult](), true},
		"AcksResponse":        {reflect.TypeFor[spool.AcksResponse](), true},
		"QueueConfig":         {reflect.TypeFor[spool.QueueConfig](), false},
		"QueueInfo":           {reflect.TypeFor[spool.QueueInfo](), true},
		"QueuesResponse":      {reflect.TypeFor[spool.QueuesResponse](), true},
		"BudgetInfo":          {reflect.TypeFor[spool.BudgetInfo](), true},
		"BudgetUse":           {reflect.TypeFor[spool.BudgetUse](), true},
		"QueueStats":          {reflect.TypeFor[spool.QueueStats](), true},
		"SessionRequest":      {reflect.TypeFor[SessionRequest](), false},
		"SessionResponse":     {reflect.TypeFor[SessionResponse](), true},
		"StatsNow":            {reflect.TypeFor[spool.StatsNow](), true},
		"WindowStats":         {reflect.TypeFor[spool.WindowStats](), true},
		"Timing":              {reflect.TypeFor[spool.Timing](), true},
		"LittlesLaw":          {reflect.TypeFor[spool.LittlesLaw](), true},
		"Sizing":              {reflect.TypeFor[spool.Sizing](), true},
		"StatsHistory":        {reflect.TypeFor[spool.StatsHistory](), true},
		"StatsPoint":          {reflect.TypeFor[spool.StatsPoint](), true},
		"ErrorBody":           {reflect.TypeFor[spool.ErrorBody](), true},
		"ErrorDetail":         {reflect.TypeFor[spool.ErrorDetail](), true},
		"Status":              {reflect.TypeFor[statusResponse](), true},
		"SubscribeRequest":    {reflect.TypeFor[spool.SubscribeRequest](), false},
		"Subscription":        {reflect.TypeFor[spool.Subscription](), true},
		"TopicInfo":           {reflect.TypeFor[spool.TopicInfo](), true},
		"TopicsResponse":      {reflect.TypeFor[spool.TopicsResponse](), true},
		"PublishBatchRequest": {reflect.TypeFor[spool.PublishBatchRequest](), false},
		"Unsubscribed":        {reflect.TypeFor[unsubscribed](), true},
		"JobEvent":            {reflect.TypeFor[spool.JobEvent](), true},
		"MissedEvent":         {reflect.TypeFor[spool.MissedEvent](), true},
		// ScheduleJob embeds EnqueueRequest (allOf), which jsonFields does
		// not flatten: it is left out.
		"ScheduleRequest":   {reflect.TypeFor[spool.ScheduleRequest](), false},
		"Schedule":          {reflect.TypeFor[spool.Schedule](), true},
		"SchedulesResponse": {reflect.TypeFor[spool.SchedulesResponse](), true},
		"ScheduleDeleted":   {reflect.TypeFor[spool.ScheduleDeleted](), true},
		"BulkRequest":       {reflect.TypeFor[spool.BulkRequest](), false},
		"BulkResponse":      {reflect.TypeFor[spool.BulkResponse](), true},
		// CreatedKey embeds Key (allOf): left out as ScheduleJob is.
		"Key":              {reflect.TypeFor[spool.Key](), true},
		"CreateKeyRequest": {reflect.TypeFor[spool.CreateKeyRequest](), false},
		"KeysResponse":     {reflect.TypeFor[spool.KeysResponse](), true},
		"AuditEntry":       {reflect.TypeFor[spool.AuditEntry](), true},
		"AuditResponse":    {reflect.TypeFor[spool.AuditResponse](), true},
	}
	for name, w := range schemas {
		sch, ok := doc.Components.Schemas[name]
		require.True(t, ok, "schema %s is missing", name)
		props, _ := sch["properties"].(map[string]any)
		fields := jsonFields(w.t)
		require.ElementsMatch(t, mapKeys(fields), mapKeys(props), "schema %s: properties differ from %s's fields", name, w.t)
		for f, ft := range fields {
			require.Equal(t, jsonKind(ft.t), schemaKind(doc, props[f].(map[string]any)), "schema %s: property %s", name, f)
		}
		var required []string
		if rs, ok := sch["required"].([]any); ok {
			for _, r := range rs {
				required = append(required, r.(string))
			}
		}
		for _, r := range required {
			require.Contains(t, fields, r, "schema %s: required %s is no field", name, r)
		}
		if w.answer {
			var always []string
			for f, ft := range fields {
				if !ft.omitEmpty {
					always = append(always, f)
				}
			}
			require.ElementsMatch(t, always, required, "schema %s: required must list the fields always sent", name)
		}
	}

	// The error codes listed are those of the status table.
	codes := doc.Components.Schemas["ErrorDetail"]["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any)
	var listed []string
	for _, c := range codes {
		listed = append(listed, c.(string))
	}
	require.ElementsMatch(t, mapKeys(statusOf), listed)
}

type fieldInfo struct {
	t         reflect.Type
	omitEmpty bool
}

func jsonFields(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = fieldInfo{t: f.Type, omitEmpty: strings.Contains(opts, "omitempty")}
	}
	return out
}

func mapKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// jsonKind is the JSON type a Go type is written as ("" for any value).
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[spool.Duration](), reflect.TypeFor[time.Time]():
		return "string"
	case reflect.TypeFor[json.RawMessage]():
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64:
		return "integer"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Slice:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.String()
}

// schemaKind is the JSON type a property schema allows, following $ref.
func schemaKind(doc *openAPIDoc, p map[string]any) string {
	if ref, ok := p["$ref"].(string); ok {
		return schemaKind(doc, doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")])
	}
	typ, _ := p["type"].(string)
	return typ
}

// The document is served as it is embedded.
func TestOpenAPIHandler(t *testing.T) {
	t.Parallel()
	s := newInternalServer(t, Config{})
	rec := newRecorder()
	req, err := http.NewRequest("GET", "/v1/openapi.json", nil)
	require.NoError(t, err)
	s.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.Equal(t, openAPI, rec.Body.Bytes())
}
