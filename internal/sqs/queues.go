package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// Queue attributes. SQS queue attributes that have a Spool setting are
// that setting (RedrivePolicy is max_attempts and dead_letter_queue); the
// others are kept in the queue's config attributes under attrPrefix, and
// tags under tagPrefix (their values after a '=', so that an empty tag
// value is kept). DeleteQueue leaves deletedKey.
const (
	attrPrefix = "sqs.attr."
	tagPrefix  = "sqs.tag."
	deletedKey = "sqs.deleted"
	// noRedriveAttempts is the max_attempts of an SQS queue without a
	// redrive policy: Spool's ceiling (SQS has none).
	noRedriveAttempts = spool.MaxMaxAttempts
	// redeliverAfter is the retry backoff of queues made through SQS: a
	// message whose visibility timeout lapses is visible again at once.
	redeliverAfter = spool.Duration(time.Millisecond)
)

// Defaults SQS gives the attributes a queue was created without.
var attrDefaults = map[string]string{
	"VisibilityTimeout":             "30",
	"MaximumMessageSize":            "262144",
	"MessageRetentionPeriod":        "345600",
	"DelaySeconds":                  "0",
	"ReceiveMessageWaitTimeSeconds": "0",
	"SqsManagedSseEnabled":          "false",
}

// intRanges are the settable integer attributes and their ranges.
var intRanges = map[string][2]int{
	"VisibilityTimeout":             {0, 43200},
	"MaximumMessageSize":            {1024, 1048576},
	"MessageRetentionPeriod":        {60, 1209600},
	"DelaySeconds":                  {0, 900},
	"ReceiveMessageWaitTimeSeconds": {0, 20},
	"KmsDataKeyReusePeriodSeconds":  {60, 86400},
}

// keptAttrs are settable attributes kept as given (Spool does not act on
// them: there is no encryption at rest beyond the disk's, and the access
// policy is Spool's keys).
var keptAttrs = map[string]bool{
	"Policy": true, "RedriveAllowPolicy": true, "KmsMasterKeyId": true, "SqsManagedSseEnabled": true,
}

// fifoAttrs are the attributes only FIFO queues take.
var fifoAttrs = map[string]bool{
	"FifoQueue": true, "ContentBasedDeduplication": true, "DeduplicationScope": true, "FifoThroughputLimit": true,
}

// readOnlyAttrs are computed.
var readOnlyAttrs = []string{
	"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
	"CreatedTimestamp", "LastModifiedTimestamp", "QueueArn",
}

// queue is a resolved queue of a request.
type queue struct {
	sqs, spool string
	fifo       bool
	info       *spool.QueueInfo
}

func (q *queue) attr(name string) string {
	if v, ok := q.info.Config.Attributes[attrPrefix+name]; ok {
		return v
	}
	return attrDefaults[name]
}

func (q *queue) intAttr(name string) int {
	n, _ := strconv.Atoi(q.attr(name))
	return n
}

// url is the queue's URL as the request reached this listener.
func (c *call) url(sqsName string) string { return c.base + sqsName }

func (h *Handler) arn(sqsName string) string {
	return "arn:aws:sqs:" + h.cfg.Region + ":" + h.cfg.AccountID + ":" + sqsName
}

// nameFromURL takes the queue name from a queue URL (its last path
// segment) or an ARN; a bare name is taken as is.
func nameFromURL(s string) string {
	if strings.HasPrefix(s, "arn:") {
		return s[strings.LastIndexByte(s, ':')+1:]
	}
	if u, err := url.Parse(s); err == nil && u.Path != "" {
		s = u.Path
	}
	s = strings.TrimRight(s, "/")
	return s[strings.LastIndexByte(s, '/')+1:]
}

// allow checks the principal's right to act on a Spool queue.
func (c *call) allow(queue string) error {
	if c.who != nil && c.who.Allow != nil && !c.who.Allow(c.action, queue) {
		return newError(http.StatusForbidden, "AccessDenied", "AccessDenied", "The access key is not allowed to call %s on this queue.", c.action)
	}
	return nil
}

// lookup resolves an SQS queue name to an existing queue.
func (h *Handler) lookup(ctx context.Context, c *call, sqsName string) (*queue, error) {
	name, err := toSpool(sqsName)
	if err != nil {
		return nil, queueDoesNotExist()
	}
	if err := c.allow(name); err != nil {
		return nil, err
	}
	info, err := h.e.Queue(ctx, name)
	if errors.Is(err, spool.ErrNotFound) {
		return nil, queueDoesNotExist()
	}
	if err != nil {
		return nil, err
	}
	if _, gone := info.Config.Attributes[deletedKey]; gone {
		return nil, queueDoesNotExist()
	}
	return &queue{sqs: sqsName, spool: name, fifo: strings.HasSuffix(sqsName, fifoSuffix), info: info}, nil
}

// queueOf resolves the QueueUrl of a request (or its path).
func (h *Handler) queueOf(ctx context.Context, c *call, queueURL string) (*queue, error) {
	if queueURL == "" {
		if c.pathQueue == "" {
			return nil, missingParameter("QueueUrl")
		}
		queueURL = c.pathQueue
	}
	return h.lookup(ctx, c, nameFromURL(queueURL))
}

// queueCacheTTL bounds how long the message actions use a queue's
// settings read earlier, as the engine caches queue configs: a change made
// through another node (or the HTTP API) shows within it.
const queueCacheTTL = time.Second

type cachedQueue struct {
	info *spool.QueueInfo
	at   time.Time
}

// messageQueueOf is queueOf for the message actions, which read only the
// queue's settings: a read of the last second serves.
func (h *Handler) messageQueueOf(ctx context.Context, c *call, queueURL string) (*queue, error) {
	if queueURL == "" {
		queueURL = c.pathQueue
	}
	sqsName := nameFromURL(queueURL)
	name, err := toSpool(sqsName)
	if queueURL == "" || err != nil {
		return h.queueOf(ctx, c, queueURL)
	}
	h.cacheMu.Lock()
	e, ok := h.cache[name]
	h.cacheMu.Unlock()
	if ok && time.Since(e.at) < queueCacheTTL {
		if err := c.allow(name); err != nil {
			return nil, err
		}
		return &queue{sqs: sqsName, spool: name, fifo: strings.HasSuffix(sqsName, fifoSuffix), info: e.info}, nil
	}
	q, err := h.lookup(ctx, c, sqsName)
	if err != nil {
		return nil, err
	}
	h.cacheMu.Lock()
	if len(h.cache) >= maxCachedQueues {
		clear(h.cache)
	}
	h.cache[name] = cachedQueue{info: q.info, at: time.Now()}
	h.cacheMu.Unlock()
	return q, nil
}

// maxCachedQueues bounds the cache of queue settings.
const maxCachedQueues = 4096

// forget drops a queue's cached settings after a change made here.
func (h *Handler) forget(name string) {
	h.cacheMu.Lock()
	delete(h.cache, name)
	h.cacheMu.Unlock()
}

// patch changes a queue's config and forgets what was cached of it.
func (h *Handler) patch(ctx context.Context, name string, p spool.QueueConfig) error {
	defer h.forget(name)
	_, err := h.e.PatchQueue(ctx, name, p)
	return err
}

// checkAttributes validates attributes given to CreateQueue or
// SetQueueAttributes and returns the config patch that stores them.
func (h *Handler) checkAttributes(ctx context.Context, c *call, fifo bool, attrs map[string]string, creating bool) (spool.QueueConfig, error) {
	var patch spool.QueueConfig
	patch.Attributes = map[string]string{}
	for name, v := range attrs {
		switch {
		case intRanges[name] != [2]int{}:
			r := intRanges[name]
			n, err := strconv.Atoi(v)
			if err != nil || n < r[0] || n > r[1] {
				return patch, invalidAttributeValue("Invalid value for the parameter %s: it must be an integer from %d to %d.", name, r[0], r[1])
			}
			patch.Attributes[attrPrefix+name] = strconv.Itoa(n)
		case keptAttrs[name]:
			patch.Attributes[attrPrefix+name] = v
		case fifoAttrs[name]:
			if !fifo {
				if name == "FifoQueue" && v == "false" {
					continue
				}
				if name == "FifoQueue" {
					return patch, invalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
				}
				return patch, invalidAttributeName(name)
			}
			switch name {
			case "FifoQueue":
				if v != "true" {
					return patch, invalidAttributeValue("Invalid value for the parameter FifoQueue: a queue whose name ends with .fifo is a FIFO queue.")
				}
				if !creating {
					return patch, invalidAttributeName(name)
				}
				continue
			case "ContentBasedDeduplication":
				if v != "true" && v != "false" {
					return patch, invalidAttributeValue("Invalid value for the parameter ContentBasedDeduplication: use true or false.")
				}
			case "DeduplicationScope":
				if v != "queue" && v != "messageGroup" {
					return patch, invalidAttributeValue("Invalid value for the parameter DeduplicationScope: use queue or messageGroup.")
				}
			case "FifoThroughputLimit":
				if v != "perQueue" && v != "perMessageGroupId" {
					return patch, invalidAttributeValue("Invalid value for the parameter FifoThroughputLimit: use perQueue or perMessageGroupId.")
				}
			}
			patch.Attributes[attrPrefix+name] = v
		case name == "RedrivePolicy":
			if v == "" {
				patch.DeadLetterQueue = ptr("")
				patch.MaxAttempts = ptr(noRedriveAttempts)
				continue
			}
			dlq, max, err := h.parseRedrive(ctx, c, v, fifo)
			if err != nil {
				return patch, err
			}
			patch.DeadLetterQueue = &dlq
			patch.MaxAttempts = &max
		default:
			return patch, invalidAttributeName(name)
		}
	}
	return patch, nil
}

// parseRedrive reads a RedrivePolicy: its dead-letter queue (which must
// exist, FIFO for a FIFO queue) and maxReceiveCount.
func (h *Handler) parseRedrive(ctx context.Context, c *call, v string, fifo bool) (string, int, error) {
	var p struct {
		Target string          `json:"deadLetterTargetArn"`
		Max    json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil || p.Target == "" || len(p.Max) == 0 {
		return "", 0, invalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map with deadLetterTargetArn and maxReceiveCount.", clip(v, 200))
	}
	max, err := strconv.Atoi(strings.Trim(string(p.Max), `"`))
	if err != nil || max < 1 || max > 1000 {
		return "", 0, invalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: %s, valid values are from 1 to 1000 both inclusive.", clip(v, 200), clip(string(p.Max), 20))
	}
	q, err := h.lookup(ctx, c, nameFromURL(p.Target))
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Type == "QueueDoesNotExist" {
			return "", 0, invalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.", clip(v, 200))
		}
		return "", 0, err
	}
	if q.fifo != fifo {
		return "", 0, invalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: Dead-letter target owner queue type must match the source queue type (FIFO or standard).", clip(v, 200))
	}
	return q.spool, max, nil
}

// currentAttr is the value in force of a settable attribute, as
// GetQueueAttributes shows it.
func (h *Handler) currentAttr(q *queue, name string) (string, bool) {
	switch {
	case name == "RedrivePolicy":
		return h.redrivePolicy(q)
	case name == "FifoQueue":
		return strconv.FormatBool(q.fifo), q.fifo
	case name == "ContentBasedDeduplication" || name == "DeduplicationScope" || name == "FifoThroughputLimit":
		if !q.fifo {
			return "", false
		}
		v, ok := q.info.Config.Attributes[attrPrefix+name]
		if !ok {
			v = map[string]string{"ContentBasedDeduplication": "false", "DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"}[name]
		}
		return v, true
	}
	v, ok := q.info.Config.Attributes[attrPrefix+name]
	if !ok {
		v, ok = attrDefaults[name]
	}
	return v, ok
}

func (h *Handler) redrivePolicy(q *queue) (string, bool) {
	dlq := ""
	if q.info.Config.DeadLetterQueue != nil {
		dlq = *q.info.Config.DeadLetterQueue
	}
	name, ok := fromSpool(dlq)
	if dlq == "" || !ok {
		return "", false
	}
	b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": h.arn(name), "maxReceiveCount": *q.info.Config.MaxAttempts})
	return string(b), true
}

// --- CreateQueue

type createQueueInput struct {
	QueueName  string
	Attributes map[string]string
	Tags       map[string]string `json:"tags"`
}

type queueURLOutput struct {
	QueueUrl string
}

func (o queueURLOutput) writeXML(x *xw) { x.elem("QueueUrl", o.QueueUrl) }

func createQueueQuery(f form, in *createQueueInput) error {
	in.QueueName = f.str("QueueName")
	in.Attributes = f.pairs("Attribute", "Name", "Value")
	in.Tags = f.pairs("Tag", "Key", "Value")
	return nil
}

func createQueue(ctx context.Context, h *Handler, c *call, in *createQueueInput) (queueURLOutput, error) {
	if in.QueueName == "" {
		return queueURLOutput{}, missingParameter("QueueName")
	}
	fifo, err := validSQSName(in.QueueName)
	if err != nil {
		return queueURLOutput{}, err
	}
	if !fifo && in.Attributes["FifoQueue"] == "true" {
		return queueURLOutput{}, invalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
	}
	if fifo && in.Attributes["FifoQueue"] != "true" {
		return queueURLOutput{}, invalidParameter("A queue whose name ends with .fifo must be created with the attribute FifoQueue=true.")
	}
	name, err := toSpool(in.QueueName)
	if err != nil {
		return queueURLOutput{}, err
	}
	if err := c.allow(name); err != nil {
		return queueURLOutput{}, err
	}
	patch, err := h.checkAttributes(ctx, c, fifo, in.Attributes, true)
	if err != nil {
		return queueURLOutput{}, err
	}
	if err := checkTags(in.Tags); err != nil {
		return queueURLOutput{}, err
	}
	info, err := h.e.Queue(ctx, name)
	switch {
	case err == nil:
		if _, gone := info.Config.Attributes[deletedKey]; !gone {
			// It exists: the same attributes are a no-op, others a
			// conflict, as in SQS.
			q := &queue{sqs: in.QueueName, spool: name, fifo: fifo, info: info}
			for k, v := range in.Attributes {
				if k == "FifoQueue" {
					continue
				}
				if cur, _ := h.currentAttr(q, k); cur != v && !sameRedrive(k, cur, v) {
					return queueURLOutput{}, newError(http.StatusBadRequest, "QueueNameExists", "QueueAlreadyExists", "A queue already exists with the same name and a different value for attribute %s.", k)
				}
			}
			return queueURLOutput{QueueUrl: c.url(in.QueueName)}, nil
		}
		// Deleted through SQS: created anew, its old attributes gone.
		for k := range info.Config.Attributes {
			if _, set := patch.Attributes[k]; !set && (strings.HasPrefix(k, attrPrefix) || strings.HasPrefix(k, tagPrefix) || k == deletedKey) {
				patch.Attributes[k] = ""
			}
		}
	case errors.Is(err, spool.ErrNotFound):
	default:
		return queueURLOutput{}, err
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	patch.Attributes[attrPrefix+"CreatedTimestamp"] = now
	patch.Attributes[attrPrefix+"LastModifiedTimestamp"] = now
	for k, v := range in.Tags {
		patch.Attributes[tagPrefix+k] = "=" + v
	}
	patch.Backoff = &spool.Backoff{Base: redeliverAfter, Max: redeliverAfter}
	if patch.MaxAttempts == nil {
		patch.MaxAttempts = ptr(noRedriveAttempts)
	}
	if err := h.patch(ctx, name, patch); err != nil {
		return queueURLOutput{}, err
	}
	return queueURLOutput{QueueUrl: c.url(in.QueueName)}, nil
}

// sameRedrive compares two redrive policies by meaning.
func sameRedrive(name, a, b string) bool {
	if name != "RedrivePolicy" {
		return false
	}
	var pa, pb map[string]any
	if json.Unmarshal([]byte(a), &pa) != nil || json.Unmarshal([]byte(b), &pb) != nil {
		return false
	}
	return nameFromURL(toString(pa["deadLetterTargetArn"])) == nameFromURL(toString(pb["deadLetterTargetArn"])) &&
		toString(pa["maxReceiveCount"]) == toString(pb["maxReceiveCount"])
}

func toString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

// --- GetQueueUrl

type getQueueURLInput struct {
	QueueName              string
	QueueOwnerAWSAccountId string
}

func getQueueURLQuery(f form, in *getQueueURLInput) error {
	in.QueueName = f.str("QueueName")
	return nil
}

func getQueueURL(ctx context.Context, h *Handler, c *call, in *getQueueURLInput) (queueURLOutput, error) {
	if in.QueueName == "" {
		return queueURLOutput{}, missingParameter("QueueName")
	}
	q, err := h.lookup(ctx, c, in.QueueName)
	if err != nil {
		return queueURLOutput{}, err
	}
	return queueURLOutput{QueueUrl: c.url(q.sqs)}, nil
}

// --- ListQueues

type listQueuesInput struct {
	QueueNamePrefix string
	MaxResults      *int
	NextToken       string
}

type listQueuesOutput struct {
	QueueUrls []string `json:"QueueUrls,omitempty"`
	NextToken string   `json:"NextToken,omitempty"`
}

func (o listQueuesOutput) writeXML(x *xw) {
	for _, u := range o.QueueUrls {
		x.elem("QueueUrl", u)
	}
	if o.NextToken != "" {
		x.elem("NextToken", o.NextToken)
	}
}

func listQueuesQuery(f form, in *listQueuesInput) error {
	in.QueueNamePrefix = f.str("QueueNamePrefix")
	in.NextToken = f.str("NextToken")
	var err error
	in.MaxResults, err = f.int("MaxResults")
	return err
}

func listQueues(ctx context.Context, h *Handler, c *call, in *listQueuesInput) (listQueuesOutput, error) {
	limit := 1000
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 1000 {
			return listQueuesOutput{}, invalidParameter("Value %d for parameter MaxResults is invalid. Reason: must be between 1 and 1000.", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	qs, err := h.e.Queues(ctx)
	if err != nil {
		return listQueuesOutput{}, err
	}
	var names []string
	for _, q := range qs {
		if engine.IsInternalQueue(q.Name) {
			continue
		}
		if _, gone := q.Config.Attributes[deletedKey]; gone {
			continue
		}
		n, ok := fromSpool(q.Name)
		if !ok || !strings.HasPrefix(n, in.QueueNamePrefix) || (in.NextToken != "" && n <= in.NextToken) {
			continue
		}
		if c.who != nil && c.who.Allow != nil && !c.who.Allow(c.action, q.Name) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out listQueuesOutput
	if len(names) > limit {
		names = names[:limit]
		if in.MaxResults != nil {
			out.NextToken = names[limit-1]
		}
	}
	for _, n := range names {
		out.QueueUrls = append(out.QueueUrls, c.url(n))
	}
	return out, nil
}

// --- ListDeadLetterSourceQueues

type listDLQSourcesInput struct {
	QueueUrl   string
	MaxResults *int
	NextToken  string
}

type listDLQSourcesOutput struct {
	QueueUrls []string `json:"queueUrls"`
	NextToken string   `json:"NextToken,omitempty"`
}

func (o listDLQSourcesOutput) writeXML(x *xw) {
	for _, u := range o.QueueUrls {
		x.elem("QueueUrl", u)
	}
	if o.NextToken != "" {
		x.elem("NextToken", o.NextToken)
	}
}

func listDLQSourcesQuery(f form, in *listDLQSourcesInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.NextToken = f.str("NextToken")
	var err error
	in.MaxResults, err = f.int("MaxResults")
	return err
}

// listDeadLetterSourceQueues lists the queues whose dead-letter queue is
// this one.
func listDeadLetterSourceQueues(ctx context.Context, h *Handler, c *call, in *listDLQSourcesInput) (listDLQSourcesOutput, error) {
	out := listDLQSourcesOutput{QueueUrls: []string{}}
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return out, err
	}
	limit := 1000
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 1000 {
			return out, invalidParameter("Value %d for parameter MaxResults is invalid. Reason: must be between 1 and 1000.", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	qs, err := h.e.Queues(ctx)
	if err != nil {
		return out, err
	}
	var names []string
	for _, s := range qs {
		if s.Config.DeadLetterQueue == nil || *s.Config.DeadLetterQueue != q.spool {
			continue
		}
		if _, gone := s.Config.Attributes[deletedKey]; gone {
			continue
		}
		n, ok := fromSpool(s.Name)
		if !ok || (in.NextToken != "" && n <= in.NextToken) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > limit {
		names = names[:limit]
		out.NextToken = names[limit-1]
	}
	for _, n := range names {
		out.QueueUrls = append(out.QueueUrls, c.url(n))
	}
	return out, nil
}

// --- DeleteQueue, PurgeQueue

type queueURLInput struct {
	QueueUrl string
}

func queueURLQuery(f form, in *queueURLInput) error {
	in.QueueUrl = f.str("QueueUrl")
	return nil
}

// purge deletes every message of the queue: the jobs not active are
// deleted, the active ones (in flight) cancelled, so that their receivers'
// deletes, visibility changes and lapsing visibility timeouts end them.
func (h *Handler) purge(ctx context.Context, q string) error {
	if _, err := h.e.Bulk(ctx, q, engine.BulkDelete, spool.JobFilter{}, false); err != nil {
		return err
	}
	_, err := h.e.Bulk(ctx, q, engine.BulkCancel, spool.JobFilter{State: spool.StateActive}, false)
	return err
}

func purgeQueue(ctx context.Context, h *Handler, c *call, in *queueURLInput) (empty, error) {
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	return empty{}, h.purge(ctx, q.spool)
}

func deleteQueue(ctx context.Context, h *Handler, c *call, in *queueURLInput) (empty, error) {
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if err := h.purge(ctx, q.spool); err != nil {
		return empty{}, err
	}
	defer h.forget(q.spool)
	_, err = h.e.DeleteQueue(ctx, q.spool)
	if errors.Is(err, spool.ErrConflict) {
		// Messages still in flight: the queue is marked deleted, hidden
		// from SQS; its cancelled jobs finish as their receivers return.
		err = h.patch(ctx, q.spool, spool.QueueConfig{Attributes: map[string]string{deletedKey: strconv.FormatInt(time.Now().Unix(), 10)}})
	}
	if errors.Is(err, spool.ErrNotFound) {
		err = nil
	}
	return empty{}, err
}

// --- GetQueueAttributes, SetQueueAttributes

type getQueueAttributesInput struct {
	QueueUrl       string
	AttributeNames []string
}

type attributesOutput struct {
	Attributes map[string]string `json:"Attributes,omitempty"`
}

func (o attributesOutput) writeXML(x *xw) { x.nameValues("Attribute", "Name", "Value", o.Attributes) }

func getQueueAttributesQuery(f form, in *getQueueAttributesInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.AttributeNames = f.list("AttributeName")
	return nil
}

func getQueueAttributes(ctx context.Context, h *Handler, c *call, in *getQueueAttributesInput) (attributesOutput, error) {
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return attributesOutput{}, err
	}
	all := map[string]string{
		"QueueArn":                              h.arn(q.sqs),
		"ApproximateNumberOfMessages":           strconv.FormatInt(q.info.Counts[spool.StateReady]+q.info.Counts[spool.StateWaiting], 10),
		"ApproximateNumberOfMessagesNotVisible": strconv.FormatInt(q.info.Counts[spool.StateActive], 10),
		"ApproximateNumberOfMessagesDelayed":    strconv.FormatInt(q.info.Counts[spool.StateScheduled], 10),
		"CreatedTimestamp":                      q.attrOr("CreatedTimestamp", "0"),
		"LastModifiedTimestamp":                 q.attrOr("LastModifiedTimestamp", "0"),
	}
	names := []string{"VisibilityTimeout", "MaximumMessageSize", "MessageRetentionPeriod", "DelaySeconds",
		"ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "FifoQueue", "ContentBasedDeduplication",
		"DeduplicationScope", "FifoThroughputLimit", "Policy", "RedriveAllowPolicy", "KmsMasterKeyId",
		"KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"}
	for _, n := range names {
		if v, ok := h.currentAttr(q, n); ok {
			all[n] = v
		}
	}
	out := attributesOutput{Attributes: map[string]string{}}
	for _, n := range in.AttributeNames {
		if n == "All" {
			out.Attributes = all
			break
		}
		if !knownAttribute(n) {
			return attributesOutput{}, invalidAttributeName(n)
		}
		if v, ok := all[n]; ok {
			out.Attributes[n] = v
		}
	}
	if len(out.Attributes) == 0 {
		out.Attributes = nil
	}
	return out, nil
}

func (q *queue) attrOr(name, def string) string {
	if v, ok := q.info.Config.Attributes[attrPrefix+name]; ok {
		return v
	}
	return def
}

func knownAttribute(n string) bool {
	if intRanges[n] != [2]int{} || keptAttrs[n] || fifoAttrs[n] || n == "RedrivePolicy" {
		return true
	}
	for _, r := range readOnlyAttrs {
		if r == n {
			return true
		}
	}
	return false
}

type setQueueAttributesInput struct {
	QueueUrl   string
	Attributes map[string]string
}

func setQueueAttributesQuery(f form, in *setQueueAttributesInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.Attributes = f.pairs("Attribute", "Name", "Value")
	return nil
}

func setQueueAttributes(ctx context.Context, h *Handler, c *call, in *setQueueAttributesInput) (empty, error) {
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if len(in.Attributes) == 0 {
		return empty{}, missingParameter("Attribute.N")
	}
	patch, err := h.checkAttributes(ctx, c, q.fifo, in.Attributes, false)
	if err != nil {
		return empty{}, err
	}
	patch.Attributes[attrPrefix+"LastModifiedTimestamp"] = strconv.FormatInt(time.Now().Unix(), 10)
	if patch.DeadLetterQueue != nil && *patch.DeadLetterQueue == q.spool {
		return empty{}, invalidAttributeValue("Value for parameter RedrivePolicy is invalid. Reason: a queue cannot be its own dead-letter queue.")
	}
	return empty{}, h.patch(ctx, q.spool, patch)
}

// --- Tags

type tagQueueInput struct {
	QueueUrl string
	Tags     map[string]string
}

func tagQueueQuery(f form, in *tagQueueInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.Tags = f.pairs("Tag", "Key", "Value")
	return nil
}

func checkTags(tags map[string]string) error {
	if len(tags) > 50 {
		return invalidParameter("Too many tags: a queue has at most 50.")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			return invalidParameter("Tag keys are 1 to 128 characters and values at most 256.")
		}
	}
	return nil
}

func tagQueue(ctx context.Context, h *Handler, c *call, in *tagQueueInput) (empty, error) {
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if len(in.Tags) == 0 {
		return empty{}, missingParameter("Tags")
	}
	if err := checkTags(in.Tags); err != nil {
		return empty{}, err
	}
	patch := spool.QueueConfig{Attributes: map[string]string{}}
	for k, v := range in.Tags {
		patch.Attributes[tagPrefix+k] = "=" + v
	}
	return empty{}, h.patch(ctx, q.spool, patch)
}

type untagQueueInput struct {
	QueueUrl string
	TagKeys  []string
}

func untagQueueQuery(f form, in *untagQueueInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.TagKeys = f.list("TagKey")
	return nil
}

func untagQueue(ctx context.Context, h *Handler, c *call, in *untagQueueInput) (empty, error) {
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if len(in.TagKeys) == 0 {
		return empty{}, missingParameter("TagKeys")
	}
	patch := spool.QueueConfig{Attributes: map[string]string{}}
	for _, k := range in.TagKeys {
		patch.Attributes[tagPrefix+k] = ""
	}
	return empty{}, h.patch(ctx, q.spool, patch)
}

type tagsOutput struct {
	Tags map[string]string `json:"Tags,omitempty"`
}

func (o tagsOutput) writeXML(x *xw) { x.nameValues("Tag", "Key", "Value", o.Tags) }

func listQueueTags(ctx context.Context, h *Handler, c *call, in *queueURLInput) (tagsOutput, error) {
	q, err := h.queueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return tagsOutput{}, err
	}
	var out tagsOutput
	for k, v := range q.info.Config.Attributes {
		if t, ok := strings.CutPrefix(k, tagPrefix); ok {
			if out.Tags == nil {
				out.Tags = map[string]string{}
			}
			out.Tags[t] = strings.TrimPrefix(v, "=")
		}
	}
	return out, nil
}
