"""s3:// (MinIO, AWS) for TensorFlow, Beam and our own code, configured from the environment.

TensorFlow 2.16 has no S3 file system: tensorflow-io registers one on import and reads
S3_ENDPOINT, S3_USE_HTTPS, S3_VERIFY_SSL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_REGION. Beam's S3 file system and boto3 read the same keys, AWS_DEFAULT_REGION and
AWS_ENDPOINT_URL, derived here from AWS_REGION and S3_ENDPOINT, so one set of variables (a
Kubernetes secret) serves all three.
Credentials never go into the spec, the image or Beam's arguments.
"""

import logging
import os


def endpoint_url() -> str | None:
    """S3_ENDPOINT as a URL (http:// when S3_USE_HTTPS=0), or None."""
    endpoint = os.environ.get("S3_ENDPOINT")
    if not endpoint:
        return None
    if "://" in endpoint:
        return endpoint
    secure = os.environ.get("S3_USE_HTTPS", "1").lower() not in ("0", "false")
    return f"{'https' if secure else 'http'}://{endpoint}"


def verify_ssl() -> bool:
    return os.environ.get("S3_VERIFY_SSL", "1").lower() not in ("0", "false")


def register() -> None:
    """Registers s3:// with TensorFlow and points boto3 (Beam's S3) at S3_ENDPOINT."""
    url = endpoint_url()
    if url:
        # tensorflow-io 0.37 speaks HTTPS to a bare host:port whatever S3_USE_HTTPS says.
        os.environ["S3_ENDPOINT"] = url
        os.environ.setdefault("AWS_ENDPOINT_URL", url)
    if os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]  # boto3 reads this one.
    try:
        import tensorflow_io  # noqa: F401 (registers s3:// with tf.io.gfile)
    except ImportError:
        logging.warning("tensorflow-io is not installed: s3:// paths will not work")


def register_for(*texts: str) -> None:
    """register() when any of `texts` (paths, or a step's JSON arguments) mentions s3://.

    Only then: tensorflow-io in a process can make it abort at exit (see container_entrypoint).
    """
    if any("s3://" in str(text) for text in texts):
        register()


def s3_client():
    """A boto3 S3 client for the same endpoint and keys as TensorFlow's."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url(),
        region_name=os.environ.get("AWS_REGION") or None,
        verify=verify_ssl(),
    )


# A connection failure, as tensorflow-io (the AWS SDK for C++: curl's code) and botocore
# (Beam's S3, boto3) word it: host not resolved, connection refused, timed out.
_UNREACHABLE = (
    "curlCode: 6,",
    "curlCode: 7,",
    "curlCode: 28,",
    "Could not connect to the endpoint URL",
    "Connect timeout on endpoint URL",
)


def unreachable_endpoint(error: BaseException) -> str | None:
    """'S3 endpoint URL unreachable' when S3_ENDPOINT is set and `error`, or an error it was
    raised from or while handling, is a connection failure; otherwise None."""
    url = endpoint_url()
    seen: set[int] = set()
    while url and error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(mark in str(error) for mark in _UNREACHABLE):
            return f"S3 endpoint {url} unreachable"
        error = error.__cause__ or error.__context__
    return None
