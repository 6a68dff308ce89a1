package sqs_test

import (
	"crypto/md5"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// raw is an answer read whole.
type raw struct {
	status int
	h      http.Header
	body   []byte
}

// query sends a query-protocol request (a form POST to path).
func (e *env) query(path string, params ...string) raw {
	e.t.Helper()
	f := url.Values{"Version": {"2012-11-05"}}
	for i := 0; i+1 < len(params); i += 2 {
		f.Add(params[i], params[i+1])
	}
	req, err := http.NewRequest(http.MethodPost, e.sqsURL+path, strings.NewReader(f.Encode()))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.roundTrip(req)
}

func (e *env) roundTrip(req *http.Request) raw {
	e.t.Helper()
	resp, err := e.sqsHC.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return raw{status: resp.StatusCode, h: resp.Header, body: b}
}

// The documented XML of the query protocol's answers.
type (
	responseMetadata struct {
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	xmlAttribute struct {
		Name  string `xml:"Name"`
		Value string `xml:"Value"`
	}
	xmlMessageAttribute struct {
		Name  string `xml:"Name"`
		Value struct {
			StringValue string `xml:"StringValue"`
			BinaryValue string `xml:"BinaryValue"`
			DataType    string `xml:"DataType"`
		} `xml:"Value"`
	}
	createQueueResponse struct {
		XMLName  xml.Name `xml:"http://queue.amazonaws.com/doc/2012-11-05/ CreateQueueResponse"`
		QueueURL string   `xml:"CreateQueueResult>QueueUrl"`
		responseMetadata
	}
	sendMessageResponse struct {
		XMLName                xml.Name `xml:"SendMessageResponse"`
		MessageID              string   `xml:"SendMessageResult>MessageId"`
		MD5OfMessageBody       string   `xml:"SendMessageResult>MD5OfMessageBody"`
		MD5OfMessageAttributes string   `xml:"SendMessageResult>MD5OfMessageAttributes"`
		responseMetadata
	}
	receiveMessageResponse struct {
		XMLName  xml.Name `xml:"ReceiveMessageResponse"`
		Messages []struct {
			MessageID              string                `xml:"MessageId"`
			ReceiptHandle          string                `xml:"ReceiptHandle"`
			MD5OfBody              string                `xml:"MD5OfBody"`
			Body                   string                `xml:"Body"`
			Attributes             []xmlAttribute        `xml:"Attribute"`
			MD5OfMessageAttributes string                `xml:"MD5OfMessageAttributes"`
			MessageAttributes      []xmlMessageAttribute `xml:"MessageAttribute"`
		} `xml:"ReceiveMessageResult>Message"`
		responseMetadata
	}
	getQueueAttributesResponse struct {
		XMLName    xml.Name       `xml:"GetQueueAttributesResponse"`
		Attributes []xmlAttribute `xml:"GetQueueAttributesResult>Attribute"`
	}
	listQueuesResponse struct {
		XMLName   xml.Name `xml:"ListQueuesResponse"`
		QueueURLs []string `xml:"ListQueuesResult>QueueUrl"`
	}
	sendMessageBatchResponse struct {
		XMLName    xml.Name `xml:"SendMessageBatchResponse"`
		Successful []struct {
			ID        string `xml:"Id"`
			MessageID string `xml:"MessageId"`
		} `xml:"SendMessageBatchResult>SendMessageBatchResultEntry"`
		Failed []struct {
			ID          string `xml:"Id"`
			SenderFault bool   `xml:"SenderFault"`
			Code        string `xml:"Code"`
			Message     string `xml:"Message"`
		} `xml:"SendMessageBatchResult>BatchResultErrorEntry"`
	}
	errorResponse struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Error   struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
		RequestID string `xml:"RequestId"`
	}
)

func decodeXML(t *testing.T, r raw, v any) {
	t.Helper()
	require.Contains(t, r.h.Get("Content-Type"), "text/xml")
	require.NoError(t, xml.Unmarshal(r.body, v), string(r.body))
}

func TestQueryProtocol(t *testing.T) {
	t.Parallel()
	e := start(t, server.Config{DataDir: t.TempDir()})

	r := e.query("/", "Action", "CreateQueue", "QueueName", "Legacy",
		"Attribute.1.Name", "VisibilityTimeout", "Attribute.1.Value", "40",
		"Tag.1.Key", "team", "Tag.1.Value", "ops")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var created createQueueResponse
	decodeXML(t, r, &created)
	require.Equal(t, e.sqsURL+"/000000000000/Legacy", created.QueueURL)
	require.Equal(t, r.h.Get("x-amzn-RequestId"), created.RequestID)
	require.NotEmpty(t, created.RequestID)
	qurl := created.QueueURL

	body := "query <protocol> & friends"
	r = e.query("/", "Action", "SendMessage", "QueueUrl", qurl, "MessageBody", body,
		"MessageAttribute.1.Name", "sample-attribute",
		"MessageAttribute.1.Value.DataType", "String",
		"MessageAttribute.1.Value.StringValue", "sample-value")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var sent sendMessageResponse
	decodeXML(t, r, &sent)
	require.Equal(t, fmt.Sprintf("%x", md5.Sum([]byte(body))), sent.MD5OfMessageBody)
	require.Equal(t, "7c815262be77a62f56671125069ca888", sent.MD5OfMessageAttributes)

	// The queue named by the path, as older clients send it.
	r = e.query("/000000000000/Legacy", "Action", "ReceiveMessage", "AttributeName.1", "All", "MessageAttributeName.1", "All", "MaxNumberOfMessages", "5")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var got receiveMessageResponse
	decodeXML(t, r, &got)
	require.Len(t, got.Messages, 1)
	m := got.Messages[0]
	require.Equal(t, sent.MessageID, m.MessageID)
	require.Equal(t, body, m.Body)
	require.Equal(t, sent.MD5OfMessageBody, m.MD5OfBody)
	require.Equal(t, "7c815262be77a62f56671125069ca888", m.MD5OfMessageAttributes)
	require.Len(t, m.MessageAttributes, 1)
	require.Equal(t, "sample-attribute", m.MessageAttributes[0].Name)
	require.Equal(t, "sample-value", m.MessageAttributes[0].Value.StringValue)
	require.Equal(t, "String", m.MessageAttributes[0].Value.DataType)
	attrs := map[string]string{}
	for _, a := range m.Attributes {
		attrs[a.Name] = a.Value
	}
	require.Equal(t, "1", attrs["ApproximateReceiveCount"])

	r = e.query("/", "Action", "DeleteMessage", "QueueUrl", qurl, "ReceiptHandle", m.ReceiptHandle)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Contains(t, string(r.body), "<DeleteMessageResponse")
	require.NotContains(t, string(r.body), "DeleteMessageResult")
	require.EqualValues(t, 0, e.depth("l.egacy"))

	r = e.query("/", "Action", "GetQueueAttributes", "QueueUrl", qurl, "AttributeName.1", "All")
	var qa getQueueAttributesResponse
	decodeXML(t, r, &qa)
	vals := map[string]string{}
	for _, a := range qa.Attributes {
		vals[a.Name] = a.Value
	}
	require.Equal(t, "40", vals["VisibilityTimeout"])
	require.Equal(t, "arn:aws:sqs:us-east-1:000000000000:Legacy", vals["QueueArn"])

	r = e.query("/", "Action", "SendMessageBatch", "QueueUrl", qurl,
		"SendMessageBatchRequestEntry.1.Id", "good", "SendMessageBatchRequestEntry.1.MessageBody", "fine",
		"SendMessageBatchRequestEntry.2.Id", "bad", "SendMessageBatchRequestEntry.2.MessageBody", "fine",
		"SendMessageBatchRequestEntry.2.DelaySeconds", "5000")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var batch sendMessageBatchResponse
	decodeXML(t, r, &batch)
	require.Len(t, batch.Successful, 1)
	require.Equal(t, "good", batch.Successful[0].ID)
	require.Len(t, batch.Failed, 1)
	require.Equal(t, "bad", batch.Failed[0].ID)
	require.True(t, batch.Failed[0].SenderFault)
	require.Equal(t, "InvalidParameterValue", batch.Failed[0].Code)

	// GET with the parameters in the URL.
	req, err := http.NewRequest(http.MethodGet, e.sqsURL+"/?Action=ListQueues&QueueNamePrefix=Leg", nil)
	require.NoError(t, err)
	r = e.roundTrip(req)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var list listQueuesResponse
	decodeXML(t, r, &list)
	require.Equal(t, []string{qurl}, list.QueueURLs)

	// Errors: the ErrorResponse document.
	for _, tc := range []struct {
		params []string
		status int
		code   string
	}{
		{[]string{"Action", "GetQueueUrl", "QueueName", "missing"}, 400, "AWS.SimpleQueueService.NonExistentQueue"},
		{[]string{"Action", "Bogus"}, 400, "InvalidAction"},
		{[]string{"QueueName", "x"}, 400, "MissingParameter"},
		{[]string{"Action", "SendMessage", "QueueUrl", qurl}, 400, "MissingParameter"},
		{[]string{"Action", "ReceiveMessage", "QueueUrl", qurl, "MaxNumberOfMessages", "ten"}, 400, "InvalidParameterValue"},
		{[]string{"Action", "DeleteMessage", "QueueUrl", qurl, "ReceiptHandle", "nope"}, 400, "ReceiptHandleIsInvalid"},
		{[]string{"Action", "SetQueueAttributes", "QueueUrl", qurl, "Attribute.1.Name", "DelaySeconds", "Attribute.1.Value", "-1"}, 400, "InvalidAttributeValue"},
	} {
		r := e.query("/", tc.params...)
		require.Equal(t, tc.status, r.status, string(r.body))
		var er errorResponse
		decodeXML(t, r, &er)
		require.Equal(t, tc.code, er.Error.Code, tc.params)
		require.Equal(t, "Sender", er.Error.Type)
		require.NotEmpty(t, er.Error.Message)
		require.Equal(t, r.h.Get("x-amzn-RequestId"), er.RequestID)
	}
	require.EqualValues(t, 1, e.depth("l.egacy"), "only the good batch entry was stored")
}

func TestJSONProtocolRaw(t *testing.T) {
	t.Parallel()
	e := start(t, server.Config{DataDir: t.TempDir()})
	post := func(target, ctype, body string, hdr ...string) raw {
		req, err := http.NewRequest(http.MethodPost, e.sqsURL+"/", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ctype)
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return e.roundTrip(req)
	}
	const ct = "application/x-amz-json-1.0"
	r := post("AmazonSQS.CreateQueue", ct, `{"QueueName":"raw"}`)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, ct, r.h.Get("Content-Type"))
	require.NotEmpty(t, r.h.Get("x-amzn-RequestId"))
	require.JSONEq(t, `{"QueueUrl":"`+e.sqsURL+`/000000000000/raw"}`, string(r.body))

	for _, tc := range []struct {
		target, ctype, body string
		status              int
		typ, query          string
		hdr                 []string
	}{
		{"AmazonSQS.Nope", ct, `{}`, 400, "com.amazonaws.sqs#UnknownOperationException", "InvalidAction;Sender", nil},
		{"AmazonSQS.SendMessage", ct, `{"QueueUrl":"raw","MessageBody":`, 400, "com.amazonaws.sqs#SerializationException", "SerializationException;Sender", nil},
		{"AmazonSQS.SendMessage", ct, `{"QueueUrl":"raw","MessageBody":"x","DelaySeconds":"soon"}`, 400, "com.amazonaws.sqs#SerializationException", "SerializationException;Sender", nil},
		{"AmazonSQS.SendMessage", ct, `{"QueueUrl":"nowhere","MessageBody":"x"}`, 400, "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue;Sender", nil},
		{"AmazonSQS.SendMessage", "text/plain", `{"QueueUrl":"raw","MessageBody":"x"}`, 400, "com.amazonaws.sqs#InvalidRequest", "InvalidRequest;Sender", nil},
		{"AmazonSQS.SendMessage", ct, `{"QueueUrl":"raw","MessageBody":"x"}`, 403, "com.amazonaws.sqs#AccessDenied", "AccessDenied;Sender", []string{"Origin", "https://evil.example"}},
	} {
		r := post(tc.target, tc.ctype, tc.body, tc.hdr...)
		require.Equal(t, tc.status, r.status, string(r.body))
		var er struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		require.NoError(t, json.Unmarshal(r.body, &er), string(r.body))
		require.Equal(t, tc.typ, er.Type)
		require.NotEmpty(t, er.Message)
		require.Equal(t, tc.query, r.h.Get("x-amzn-query-error"))
	}
	require.EqualValues(t, 0, e.depth("raw"), "no refused request stored anything")
}

func TestBodyOverTheLimit(t *testing.T) {
	t.Parallel()
	e := start(t, server.Config{DataDir: t.TempDir(), Limits: spool.Limits{MaxPayloadBytes: 32 << 10, MaxBodyBytes: 64 << 10}})
	url := e.create("small", nil)
	r := e.query("/", "Action", "SendMessage", "QueueUrl", url, "MessageBody", strings.Repeat("x", 70<<10))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, string(r.body))
	var er errorResponse
	decodeXML(t, r, &er)
	require.Equal(t, "RequestEntityTooLarge", er.Error.Code)
	// Within the request limit but over the payload limit.
	r = e.query("/", "Action", "SendMessage", "QueueUrl", url, "MessageBody", strings.Repeat("x", 40<<10))
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	decodeXML(t, r, &er)
	require.Equal(t, "InvalidParameterValue", er.Error.Code)
	require.EqualValues(t, 0, e.depth("small"))
}
