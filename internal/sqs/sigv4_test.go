package sqs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/servertest"
	"github.com/spoolq/spool/internal/sqs"
	"github.com/spoolq/spool/server"
)

// keyring is a fixed set of signing keys.
type keyring map[string]struct {
	secret string
	who    *sqs.Principal
}

func (k keyring) SigningKey(_ context.Context, id string) (string, *sqs.Principal, error) {
	e, ok := k[id]
	if !ok {
		return "", nil, sqs.ErrUnknownKey
	}
	return e.secret, e.who, nil
}

// signedEnv serves the SQS API of a real server with SigV4 checked
// against keys.
func signedEnv(t *testing.T, keys keyring, now func() time.Time) (*env, string) {
	t.Helper()
	e := start(t, server.Config{DataDir: t.TempDir()})
	h, err := sqs.New(sqs.Config{Engine: servertest.Engine(e.srv), Auth: &sqs.SigV4{Keys: keys, Now: now}})
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return e, hs.URL
}

func sdkFor(url, id, secret string, hc *http.Client) *awssqs.Client {
	return awssqs.New(awssqs.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		HTTPClient:       hc,
		RetryMaxAttempts: 1,
	})
}

func TestSignatureVersion4(t *testing.T) {
	t.Parallel()
	keys := keyring{
		"spk_admin": {secret: "admin-secret", who: &sqs.Principal{KeyID: "spk_admin"}},
		"spk_prod": {secret: "prod-secret", who: &sqs.Principal{KeyID: "spk_prod", Allow: func(action, queue string) bool {
			return strings.HasPrefix(action, "Send") || action == "GetQueueUrl"
		}}},
	}
	e, url := signedEnv(t, keys, nil)
	ctx := t.Context()
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)

	admin := sdkFor(url, "spk_admin", "admin-secret", hc)
	out, err := admin.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("signed")})
	require.NoError(t, err)
	qurl := *out.QueueUrl
	_, err = admin.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(qurl), MessageBody: aws.String("signed body")})
	require.NoError(t, err)
	got, err := admin.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(qurl), MessageSystemAttributeNames: []types.MessageSystemAttributeName{"SenderId"}})
	require.NoError(t, err)
	require.Len(t, got.Messages, 1)
	require.Equal(t, "spk_admin", got.Messages[0].Attributes["SenderId"])

	// Wrong secret, unknown key, no signature: refused, nothing stored.
	_, err = sdkFor(url, "spk_admin", "wrong", hc).SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(qurl), MessageBody: aws.String("x")})
	require.Equal(t, "SignatureDoesNotMatch", code(t, err))
	_, err = sdkFor(url, "spk_nobody", "x", hc).SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(qurl), MessageBody: aws.String("x")})
	require.Equal(t, "InvalidClientTokenId", code(t, err))
	anon := awssqs.New(awssqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(url), Credentials: aws.AnonymousCredentials{}, HTTPClient: hc, RetryMaxAttempts: 1})
	_, err = anon.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(qurl), MessageBody: aws.String("x")})
	require.Equal(t, "MissingAuthenticationToken", code(t, err))
	require.EqualValues(t, 1, e.depth("signed"))

	// A producer key may send, not receive or change the queue.
	prod := sdkFor(url, "spk_prod", "prod-secret", hc)
	_, err = prod.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(qurl), MessageBody: aws.String("from producer")})
	require.NoError(t, err)
	_, err = prod.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(qurl)})
	require.Equal(t, "AccessDenied", code(t, err))
	_, err = prod.PurgeQueue(ctx, &awssqs.PurgeQueueInput{QueueUrl: aws.String(qurl)})
	require.Equal(t, "AccessDenied", code(t, err))
	require.EqualValues(t, 2, e.depth("signed"))

	// A body changed after signing is refused.
	req := signedQuery(t, url, "spk_admin", "admin-secret", http.MethodPost, url+"/", "Action=SendMessage&QueueUrl=signed&MessageBody=original")
	// (same length, so only the signature can tell)
	req.Body = io.NopCloser(strings.NewReader("Action=SendMessage&QueueUrl=signed&MessageBody=tampered"))
	r := e.roundTripOn(hc, req)
	require.Equal(t, http.StatusForbidden, r.status, string(r.body))
	require.Contains(t, string(r.body), "<Code>SignatureDoesNotMatch</Code>")
	require.EqualValues(t, 2, e.depth("signed"))

	// The query protocol, signed by the SDK's signer: a form POST and a GET
	// with parameters in the URL.
	req = signedQuery(t, url, "spk_admin", "admin-secret", http.MethodPost, url+"/000000000000/signed", "Action=SendMessage&MessageBody="+urlQueryEscape("a b&c=d/é"))
	r = e.roundTripOn(hc, req)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	req = signedQuery(t, url, "spk_admin", "admin-secret", http.MethodGet, url+"/?Action=ListQueues&QueueNamePrefix=sig%20ned&Version=2012-11-05", "")
	r = e.roundTripOn(hc, req)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.EqualValues(t, 3, e.depth("signed"))
}

func TestSignatureExpired(t *testing.T) {
	t.Parallel()
	keys := keyring{"spk_a": {secret: "s", who: &sqs.Principal{KeyID: "spk_a"}}}
	_, url := signedEnv(t, keys, func() time.Time { return time.Now().Add(time.Hour) })
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)
	_, err := sdkFor(url, "spk_a", "s", hc).ListQueues(t.Context(), &awssqs.ListQueuesInput{})
	require.Equal(t, "RequestExpired", code(t, err))
}

// signedQuery builds a query-protocol request signed by the AWS SDK's own
// Signature Version 4 signer.
func signedQuery(t *testing.T, base, id, secret, method, target, form string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(form))
	require.NoError(t, err)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req.Body = http.NoBody
	}
	sum := sha256.Sum256([]byte(form))
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sqs", "eu-west-1", time.Now()))
	return req
}

func (e *env) roundTripOn(hc *http.Client, req *http.Request) raw {
	e.t.Helper()
	old := e.sqsHC
	e.sqsHC = hc
	defer func() { e.sqsHC = old }()
	return e.roundTrip(req)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
