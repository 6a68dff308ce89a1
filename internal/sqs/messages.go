package sqs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// --- SendMessage, SendMessageBatch

type sendEntry struct {
	Id                      string
	MessageBody             string
	DelaySeconds            *int
	MessageAttributes       map[string]MessageAttribute
	MessageSystemAttributes map[string]MessageAttribute
	MessageDeduplicationId  string
	MessageGroupId          string
}

type sendMessageInput struct {
	QueueUrl string
	sendEntry
}

type sendResult struct {
	Id                     string `json:"Id,omitempty"`
	MessageId              string `json:"MessageId"`
	MD5OfMessageBody       string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes string `json:"MD5OfMessageAttributes,omitempty"`
	SequenceNumber         string `json:"SequenceNumber,omitempty"`
}

func (o sendResult) writeXML(x *xw) {
	if o.Id != "" {
		x.elem("Id", o.Id)
	}
	x.elem("MessageId", o.MessageId)
	x.elem("MD5OfMessageBody", o.MD5OfMessageBody)
	if o.MD5OfMessageAttributes != "" {
		x.elem("MD5OfMessageAttributes", o.MD5OfMessageAttributes)
	}
	if o.SequenceNumber != "" {
		x.elem("SequenceNumber", o.SequenceNumber)
	}
}

func sendEntryQuery(f form, e *sendEntry) error {
	e.Id = f.str("Id")
	e.MessageBody = f.str("MessageBody")
	e.MessageDeduplicationId = f.str("MessageDeduplicationId")
	e.MessageGroupId = f.str("MessageGroupId")
	var err error
	if e.DelaySeconds, err = f.int("DelaySeconds"); err != nil {
		return err
	}
	if e.MessageAttributes, err = f.messageAttributes("MessageAttribute"); err != nil {
		return err
	}
	e.MessageSystemAttributes, err = f.messageAttributes("MessageSystemAttribute")
	return err
}

func sendMessageQuery(f form, in *sendMessageInput) error {
	in.QueueUrl = f.str("QueueUrl")
	return sendEntryQuery(f, &in.sendEntry)
}

// validID checks a dedup or group id: 1 to 128 of alphanumeric and
// punctuation characters.
func validID(name, v string) error {
	if len(v) > 128 {
		return invalidParameter("Value for parameter %s is invalid. Reason: it must be at most 128 characters.", name)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return invalidParameter("Value for parameter %s is invalid. Reason: it may contain only alphanumeric characters and punctuation.", name)
		}
	}
	return nil
}

// toRequest checks one message and makes the enqueue request of its job.
func (h *Handler) toRequest(q *queue, e *sendEntry) (spool.EnqueueRequest, error) {
	var req spool.EnqueueRequest
	if err := validBody(e.MessageBody); err != nil {
		return req, err
	}
	size, err := validAttributes(e.MessageAttributes)
	if err != nil {
		return req, err
	}
	for n := range e.MessageSystemAttributes {
		if n != "AWSTraceHeader" {
			return req, invalidParameter("Message system attribute name '%s' is invalid.", clip(n, 256))
		}
	}
	if max := q.intAttr("MaximumMessageSize"); len(e.MessageBody)+size > max {
		return req, invalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", max)
	}
	delay := q.intAttr("DelaySeconds")
	if e.DelaySeconds != nil {
		if q.fifo {
			return req, invalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", *e.DelaySeconds)
		}
		if *e.DelaySeconds < 0 || *e.DelaySeconds > 900 {
			return req, invalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.", *e.DelaySeconds)
		}
		delay = *e.DelaySeconds
	}
	req.Type = MessageType
	if delay > 0 {
		d := spool.Duration(time.Duration(delay) * time.Second)
		req.Delay = &d
	}
	if q.fifo {
		if e.MessageGroupId == "" {
			return req, missingParameter("MessageGroupId")
		}
		if err := validID("MessageGroupId", e.MessageGroupId); err != nil {
			return req, err
		}
		dedup := e.MessageDeduplicationId
		if dedup == "" {
			if q.attr("ContentBasedDeduplication") != "true" {
				return req, invalidParameter("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
			}
			sum := sha256.Sum256([]byte(e.MessageBody))
			dedup = hex.EncodeToString(sum[:])
		}
		if err := validID("MessageDeduplicationId", dedup); err != nil {
			return req, err
		}
		req.OrderingKey = e.MessageGroupId
		req.IdempotencyKey = dedup
		if q.attr("DeduplicationScope") == "messageGroup" {
			// Deduplicated within the group: the key names the group.
			req.IdempotencyKey = e.MessageGroupId + ":" + dedup
		}
	} else if e.MessageDeduplicationId != "" {
		return req, invalidParameter("The request include parameter MessageDeduplicationId that is not valid for this queue type")
	}
	payload, perr := toPayload(e.MessageBody, e.MessageAttributes)
	if perr != nil {
		return req, invalidParameter("The message could not be encoded.")
	}
	req.Payload = payload
	if err := req.Validate(h.cfg.Limits); err != nil {
		return req, fromEngine(err)
	}
	return req, nil
}

func (h *Handler) sendResultOf(q *queue, e *sendEntry, j *spool.Job) sendResult {
	r := sendResult{
		MessageId:              j.ID,
		MD5OfMessageBody:       md5Hex(e.MessageBody),
		MD5OfMessageAttributes: attributesMD5(e.MessageAttributes),
	}
	if q.fifo {
		r.SequenceNumber = sequenceNumber(j.ID)
	}
	return r
}

func sendMessage(ctx context.Context, h *Handler, c *call, in *sendMessageInput) (sendResult, error) {
	q, err := h.messageQueueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return sendResult{}, err
	}
	req, err := h.toRequest(q, &in.sendEntry)
	if err != nil {
		return sendResult{}, err
	}
	res, err := h.e.Enqueue(ctx, q.spool, []spool.EnqueueRequest{req})
	if err != nil {
		return sendResult{}, err
	}
	r := h.sendResultOf(q, &in.sendEntry, res[0].Job)
	r.Id = ""
	return r, nil
}

// batchError is a failed entry of a batch.
type batchError struct {
	Id          string
	SenderFault bool
	Code        string
	Message     string
}

func failedEntry(id string, err error) batchError {
	ae := fromEngine(err)
	return batchError{Id: id, SenderFault: ae.Sender, Code: ae.Code, Message: ae.Msg}
}

func writeFailed(x *xw, fs []batchError) {
	for _, f := range fs {
		x.open("BatchResultErrorEntry")
		x.elem("Id", f.Id)
		x.elem("SenderFault", strconv.FormatBool(f.SenderFault))
		x.elem("Code", f.Code)
		x.elem("Message", f.Message)
		x.close("BatchResultErrorEntry")
	}
}

// checkBatch checks the entry ids of a batch request.
func checkBatch(ids []string) error {
	if len(ids) == 0 {
		return newError(400, "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", "There should be at least one entry in the request.")
	}
	if len(ids) > 10 {
		return newError(400, "TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10. You have sent %d.", len(ids))
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id == "" || len(id) > 80 || strings.IndexFunc(id, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) >= 0 {
			return newError(400, "InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return newError(400, "BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id %s repeated.", id)
		}
		seen[id] = true
	}
	return nil
}

type sendMessageBatchInput struct {
	QueueUrl string
	Entries  []sendEntry
}

type sendMessageBatchOutput struct {
	Successful []sendResult `json:"Successful"`
	Failed     []batchError `json:"Failed"`
}

func (o sendMessageBatchOutput) writeXML(x *xw) {
	for _, s := range o.Successful {
		x.open("SendMessageBatchResultEntry")
		s.writeXML(x)
		x.close("SendMessageBatchResultEntry")
	}
	writeFailed(x, o.Failed)
}

func sendMessageBatchQuery(f form, in *sendMessageBatchInput) error {
	in.QueueUrl = f.str("QueueUrl")
	for _, sub := range f.entries("SendMessageBatchRequestEntry") {
		var e sendEntry
		if err := sendEntryQuery(sub, &e); err != nil {
			return err
		}
		in.Entries = append(in.Entries, e)
	}
	return nil
}

// maxBatchBytes bounds the bodies and attributes of one SendMessageBatch.
const maxBatchBytes = 1 << 20

func sendMessageBatch(ctx context.Context, h *Handler, c *call, in *sendMessageBatchInput) (sendMessageBatchOutput, error) {
	out := sendMessageBatchOutput{Successful: []sendResult{}, Failed: []batchError{}}
	q, err := h.messageQueueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return out, err
	}
	ids := make([]string, len(in.Entries))
	total := 0
	for i, e := range in.Entries {
		ids[i] = e.Id
		total += len(e.MessageBody)
	}
	if err := checkBatch(ids); err != nil {
		return out, err
	}
	if total > maxBatchBytes {
		return out, newError(400, "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", maxBatchBytes, total)
	}
	reqs := make([]spool.EnqueueRequest, 0, len(in.Entries))
	idx := make([]int, 0, len(in.Entries))
	for i := range in.Entries {
		req, err := h.toRequest(q, &in.Entries[i])
		if err != nil {
			out.Failed = append(out.Failed, failedEntry(in.Entries[i].Id, err))
			continue
		}
		reqs = append(reqs, req)
		idx = append(idx, i)
	}
	if len(reqs) == 0 {
		return out, nil
	}
	// The valid entries are stored together, all or none: a full queue
	// fails the whole request (retried by the client), nothing partial.
	res, err := h.e.Enqueue(ctx, q.spool, reqs)
	if err != nil {
		return sendMessageBatchOutput{}, err
	}
	for k, i := range idx {
		r := h.sendResultOf(q, &in.Entries[i], res[k].Job)
		r.Id = in.Entries[i].Id
		out.Successful = append(out.Successful, r)
	}
	return out, nil
}

// --- ReceiveMessage

type receiveMessageInput struct {
	QueueUrl                    string
	AttributeNames              []string
	MessageSystemAttributeNames []string
	MessageAttributeNames       []string
	MaxNumberOfMessages         *int
	VisibilityTimeout           *int
	WaitTimeSeconds             *int
	ReceiveRequestAttemptId     string
}

type message struct {
	MessageId              string
	ReceiptHandle          string
	MD5OfBody              string
	Body                   string
	Attributes             map[string]string           `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string                      `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]MessageAttribute `json:"MessageAttributes,omitempty"`
}

type receiveMessageOutput struct {
	Messages []message `json:"Messages,omitempty"`
}

func (o receiveMessageOutput) writeXML(x *xw) {
	for _, m := range o.Messages {
		x.open("Message")
		x.elem("MessageId", m.MessageId)
		x.elem("ReceiptHandle", m.ReceiptHandle)
		x.elem("MD5OfBody", m.MD5OfBody)
		x.elem("Body", m.Body)
		x.nameValues("Attribute", "Name", "Value", m.Attributes)
		if m.MD5OfMessageAttributes != "" {
			x.elem("MD5OfMessageAttributes", m.MD5OfMessageAttributes)
		}
		x.messageAttributes(m.MessageAttributes)
		x.close("Message")
	}
}

func receiveMessageQuery(f form, in *receiveMessageInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.AttributeNames = f.list("AttributeName")
	in.MessageSystemAttributeNames = f.list("MessageSystemAttributeName")
	in.MessageAttributeNames = f.list("MessageAttributeName")
	in.ReceiveRequestAttemptId = f.str("ReceiveRequestAttemptId")
	var err error
	if in.MaxNumberOfMessages, err = f.int("MaxNumberOfMessages"); err != nil {
		return err
	}
	if in.VisibilityTimeout, err = f.int("VisibilityTimeout"); err != nil {
		return err
	}
	in.WaitTimeSeconds, err = f.int("WaitTimeSeconds")
	return err
}

func receiveMessage(ctx context.Context, h *Handler, c *call, in *receiveMessageInput) (receiveMessageOutput, error) {
	q, err := h.messageQueueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return receiveMessageOutput{}, err
	}
	n := 1
	if in.MaxNumberOfMessages != nil {
		n = *in.MaxNumberOfMessages
		if n < 1 || n > 10 {
			return receiveMessageOutput{}, invalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", n)
		}
	}
	wait := q.intAttr("ReceiveMessageWaitTimeSeconds")
	if in.WaitTimeSeconds != nil {
		wait = *in.WaitTimeSeconds
		if wait < 0 || wait > 20 {
			return receiveMessageOutput{}, invalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", wait)
		}
	}
	vis := q.intAttr("VisibilityTimeout")
	if in.VisibilityTimeout != nil {
		vis = *in.VisibilityTimeout
		if vis < 0 || vis > 43200 {
			return receiveMessageOutput{}, invalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", vis)
		}
	}
	lease := spool.Duration(max(time.Duration(vis)*time.Second, spool.MinLeaseDuration))
	w := spool.Duration(time.Duration(wait) * time.Second)
	worker := "sqs"
	if c.who != nil && c.who.KeyID != "" {
		worker = "sqs:" + c.who.KeyID
	}
	jobs, err := h.e.Lease(ctx, spool.LeaseRequest{Queues: []string{q.spool}, Max: n, Wait: &w, Lease: &lease, Worker: worker})
	if err != nil {
		return receiveMessageOutput{}, err
	}
	sys := systemNames(append(in.AttributeNames, in.MessageSystemAttributeNames...))
	var out receiveMessageOutput
	for _, j := range jobs {
		body, attrs := fromJob(j)
		m := message{
			MessageId:     j.ID,
			ReceiptHandle: receiptHandle(j.ID, j.Lease.Token, q.spool),
			MD5OfBody:     md5Hex(body),
			Body:          body,
		}
		if len(sys) > 0 {
			m.Attributes = h.systemAttributes(ctx, c, q, j, sys)
		}
		if sel := selectAttributes(attrs, in.MessageAttributeNames); len(sel) > 0 {
			m.MessageAttributes = sel
			m.MD5OfMessageAttributes = attributesMD5(sel)
		}
		out.Messages = append(out.Messages, m)
	}
	return out, nil
}

// systemNames is the set of system attributes asked for (nil for none).
func systemNames(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

func (h *Handler) systemAttributes(ctx context.Context, c *call, q *queue, j *spool.Job, want map[string]bool) map[string]string {
	all := want["All"]
	out := map[string]string{}
	set := func(n, v string) {
		if (all || want[n]) && v != "" {
			out[n] = v
		}
	}
	sender := h.cfg.AccountID
	if c.who != nil && c.who.KeyID != "" {
		sender = c.who.KeyID
	}
	set("SenderId", sender)
	set("SentTimestamp", strconv.FormatInt(j.CreatedAt.UnixMilli(), 10))
	set("ApproximateReceiveCount", strconv.Itoa(j.Attempt))
	if j.StartedAt != nil {
		set("ApproximateFirstReceiveTimestamp", strconv.FormatInt(j.StartedAt.UnixMilli(), 10))
	}
	if src := engine.DeadLetterSource(j); src != "" && (all || want["DeadLetterQueueSourceArn"]) {
		if from, err := h.e.Get(ctx, src, 0); err == nil {
			if n, ok := fromSpool(from.Queue); ok {
				set("DeadLetterQueueSourceArn", h.arn(n))
			}
		}
	}
	if q.fifo {
		set("MessageGroupId", j.OrderingKey)
		set("MessageDeduplicationId", strings.TrimPrefix(j.IdempotencyKey, j.OrderingKey+":"))
		set("SequenceNumber", sequenceNumber(j.ID))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// selectAttributes keeps the message attributes asked for: "All" or ".*"
// for all, "prefix.*" for a prefix, or names.
func selectAttributes(attrs map[string]MessageAttribute, names []string) map[string]MessageAttribute {
	if len(attrs) == 0 || len(names) == 0 {
		return nil
	}
	out := map[string]MessageAttribute{}
	for n, a := range attrs {
		for _, w := range names {
			p, wild := strings.CutSuffix(w, ".*")
			if w == "All" || w == ".*" || w == n || wild && strings.HasPrefix(n, p+".") {
				out[n] = a
				break
			}
		}
	}
	return out
}

// --- DeleteMessage, DeleteMessageBatch

type deleteMessageInput struct {
	QueueUrl      string
	ReceiptHandle string
}

func deleteMessageQuery(f form, in *deleteMessageInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.ReceiptHandle = f.str("ReceiptHandle")
	return nil
}

// deleteOutcome maps the engine's answer to a delete: a stale handle (the
// message was received again since, or is already deleted) succeeds and
// changes nothing, as SQS documents; an unknown message is an invalid
// handle.
func deleteOutcome(handle string, err error) error {
	switch {
	case err == nil, errors.Is(err, spool.ErrLeaseLost):
		return nil
	case errors.Is(err, spool.ErrNotFound):
		return invalidReceiptHandle(handle)
	}
	return err
}

func deleteMessage(ctx context.Context, h *Handler, c *call, in *deleteMessageInput) (empty, error) {
	q, err := h.messageQueueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if in.ReceiptHandle == "" {
		return empty{}, missingParameter("ReceiptHandle")
	}
	id, token, perr := parseReceiptHandle(in.ReceiptHandle, q.spool)
	if perr != nil {
		return empty{}, perr
	}
	_, err = h.e.Complete(ctx, id, spool.CompleteRequest{Token: token})
	return empty{}, deleteOutcome(in.ReceiptHandle, err)
}

type batchHandle struct {
	Id                string
	ReceiptHandle     string
	VisibilityTimeout *int
}

type handleBatchInput struct {
	QueueUrl string
	Entries  []batchHandle
}

type okEntry struct {
	Id string
}

type handleBatchOutput struct {
	Successful []okEntry    `json:"Successful"`
	Failed     []batchError `json:"Failed"`
	entry      string
}

func (o handleBatchOutput) writeXML(x *xw) {
	for _, s := range o.Successful {
		x.open(o.entry)
		x.elem("Id", s.Id)
		x.close(o.entry)
	}
	writeFailed(x, o.Failed)
}

func handleBatchQuery(prefix string) func(f form, in *handleBatchInput) error {
	return func(f form, in *handleBatchInput) error {
		in.QueueUrl = f.str("QueueUrl")
		for _, sub := range f.entries(prefix) {
			e := batchHandle{Id: sub.str("Id"), ReceiptHandle: sub.str("ReceiptHandle")}
			var err error
			if e.VisibilityTimeout, err = sub.int("VisibilityTimeout"); err != nil {
				return err
			}
			in.Entries = append(in.Entries, e)
		}
		return nil
	}
}

func deleteMessageBatch(ctx context.Context, h *Handler, c *call, in *handleBatchInput) (handleBatchOutput, error) {
	out := handleBatchOutput{Successful: []okEntry{}, Failed: []batchError{}, entry: "DeleteMessageBatchResultEntry"}
	q, err := h.messageQueueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return out, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatch(ids); err != nil {
		return out, err
	}
	acks := make([]spool.Ack, 0, len(in.Entries))
	idx := make([]int, 0, len(in.Entries))
	for i, e := range in.Entries {
		id, token, perr := parseReceiptHandle(e.ReceiptHandle, q.spool)
		if perr != nil {
			out.Failed = append(out.Failed, failedEntry(e.Id, perr))
			continue
		}
		acks = append(acks, spool.Ack{ID: id, Token: token, Outcome: spool.OutcomeComplete})
		idx = append(idx, i)
	}
	if len(acks) > 0 {
		res, err := h.e.Ack(ctx, acks)
		if err != nil {
			return handleBatchOutput{}, err
		}
		for k, i := range idx {
			var aerr error
			if d := res[k].Error; d != nil {
				aerr = codeError(d)
			}
			if err := deleteOutcome(in.Entries[i].ReceiptHandle, aerr); err != nil {
				out.Failed = append(out.Failed, failedEntry(in.Entries[i].Id, err))
				continue
			}
			out.Successful = append(out.Successful, okEntry{Id: in.Entries[i].Id})
		}
	}
	return out, nil
}

// codeError turns the error of one element of a batch ack back into an
// error wrapping its sentinel.
func codeError(d *spool.ErrorDetail) error {
	switch d.Code {
	case spool.CodeLeaseLost:
		return fmt.Errorf("%s: %w", d.Message, spool.ErrLeaseLost)
	case spool.CodeNotFound:
		return fmt.Errorf("%s: %w", d.Message, spool.ErrNotFound)
	case spool.CodeInvalid:
		return fmt.Errorf("%s: %w", d.Message, spool.ErrInvalid)
	case spool.CodeUnavailable:
		return fmt.Errorf("%s: %w", d.Message, spool.ErrUnavailable)
	}
	return errors.New(d.Message)
}

// --- ChangeMessageVisibility, ChangeMessageVisibilityBatch

type changeVisibilityInput struct {
	QueueUrl          string
	ReceiptHandle     string
	VisibilityTimeout *int
}

func changeVisibilityQuery(f form, in *changeVisibilityInput) error {
	in.QueueUrl = f.str("QueueUrl")
	in.ReceiptHandle = f.str("ReceiptHandle")
	var err error
	in.VisibilityTimeout, err = f.int("VisibilityTimeout")
	return err
}

// changeVisibility extends the lease of a received message, or with 0
// makes it visible again at once (a failed attempt: it counts toward the
// redrive policy's maxReceiveCount, as another receive would in SQS).
func (h *Handler) changeVisibility(ctx context.Context, q *queue, handle string, vis *int) error {
	if handle == "" {
		return missingParameter("ReceiptHandle")
	}
	if vis == nil {
		return missingParameter("VisibilityTimeout")
	}
	if *vis < 0 || *vis > 43200 {
		return invalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200.", *vis)
	}
	id, token, perr := parseReceiptHandle(handle, q.spool)
	if perr != nil {
		return perr
	}
	var err error
	if *vis == 0 {
		zero := spool.Duration(0)
		_, err = h.e.Fail(ctx, id, spool.FailRequest{Token: token, Error: "made visible again (visibility timeout set to 0 through SQS)", RetryIn: &zero})
	} else {
		d := spool.Duration(time.Duration(*vis) * time.Second)
		_, err = h.e.Heartbeat(ctx, id, spool.HeartbeatRequest{Token: token, Extend: &d})
	}
	if errors.Is(err, spool.ErrLeaseLost) || errors.Is(err, spool.ErrNotFound) {
		return invalidParameter("Value %s for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.", clip(handle, 100))
	}
	return err
}

func changeMessageVisibility(ctx context.Context, h *Handler, c *call, in *changeVisibilityInput) (empty, error) {
	q, err := h.messageQueueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	return empty{}, h.changeVisibility(ctx, q, in.ReceiptHandle, in.VisibilityTimeout)
}

func changeMessageVisibilityBatch(ctx context.Context, h *Handler, c *call, in *handleBatchInput) (handleBatchOutput, error) {
	out := handleBatchOutput{Successful: []okEntry{}, Failed: []batchError{}, entry: "ChangeMessageVisibilityBatchResultEntry"}
	q, err := h.messageQueueOf(ctx, c, in.QueueUrl)
	if err != nil {
		return out, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatch(ids); err != nil {
		return out, err
	}
	for _, e := range in.Entries {
		if err := h.changeVisibility(ctx, q, e.ReceiptHandle, e.VisibilityTimeout); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) && ctx.Err() == nil && !errors.Is(err, spool.ErrUnavailable) {
				return handleBatchOutput{}, err
			}
			out.Failed = append(out.Failed, failedEntry(e.Id, err))
			continue
		}
		out.Successful = append(out.Successful, okEntry{Id: e.Id})
	}
	return out, nil
}

// actions are the SQS actions served, by name.
var actions = map[string]action{
	"CreateQueue":                  act(createQueueQuery, createQueue),
	"GetQueueUrl":                  act(getQueueURLQuery, getQueueURL),
	"ListQueues":                   act(listQueuesQuery, listQueues),
	"DeleteQueue":                  act(queueURLQuery, deleteQueue),
	"PurgeQueue":                   act(queueURLQuery, purgeQueue),
	"GetQueueAttributes":           act(getQueueAttributesQuery, getQueueAttributes),
	"SetQueueAttributes":           act(setQueueAttributesQuery, setQueueAttributes),
	"TagQueue":                     act(tagQueueQuery, tagQueue),
	"UntagQueue":                   act(untagQueueQuery, untagQueue),
	"ListQueueTags":                act(queueURLQuery, listQueueTags),
	"SendMessage":                  act(sendMessageQuery, sendMessage),
	"SendMessageBatch":             act(sendMessageBatchQuery, sendMessageBatch),
	"ReceiveMessage":               act(receiveMessageQuery, receiveMessage),
	"DeleteMessage":                act(deleteMessageQuery, deleteMessage),
	"DeleteMessageBatch":           act(handleBatchQuery("DeleteMessageBatchRequestEntry"), deleteMessageBatch),
	"ChangeMessageVisibility":      act(changeVisibilityQuery, changeMessageVisibility),
	"ChangeMessageVisibilityBatch": act(handleBatchQuery("ChangeMessageVisibilityBatchRequestEntry"), changeMessageVisibilityBatch),
	"ListDeadLetterSourceQueues":   act(listDLQSourcesQuery, listDeadLetterSourceQueues),
}
