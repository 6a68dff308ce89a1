package client

// VerifyWebhookAt is VerifyWebhook with a given now.
var VerifyWebhookAt = verifyWebhook
