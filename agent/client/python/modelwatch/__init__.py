"""modelwatch — capture ML predictions and labels from Python, for the local modelwatch-agent.

A thin ctypes binding of libmodelwatch (the C library of include/modelwatch.h), standard
library only, typed (py.typed). One call per prediction encodes a protobuf message in C into
the client's buffer, from which a background thread hands it to the agent over nanomsg; the
call never waits. Captures made before the agent is connected wait in the buffer for it; when
the buffer is full the message is dropped and counted, and the call returns False. Telemetry
never blocks or fails the model's request; only a programming error (an invalid argument, a
closed client, a client inherited across fork()) raises.

    import modelwatch

    with modelwatch.Client("ipc:///run/modelwatch/agent.sock") as mw:
        mw.capture("churn", "req-17", version="v3", latency_us=830,
                   features={"age": 42, "country": "fr", "tenure": None},
                   predicted_class="churn", score=0.91)
        ...
        mw.feedback("churn", "req-17", "churn", version="v3")

Install with `pip install agent/client/python` (add `--config-settings libdir=DIR` when
libmodelwatch.so is not installed where the system looks); the library is then found without
any environment variable (see modelwatch._library for where it is looked for; MODELWATCH_LIB,
a path to a libmodelwatch.so, overrides). If it is not found, importing this module raises
ImportError naming the places looked at.

Arguments refused with ValueError (the checks of the C library's MW_EINVAL, made in Python so
the message says what is wrong; they are not counted in `dropped`):
  - model, prediction_id, feature names: not a str, empty, or containing NUL;
  - version, error_code, predicted_class, categorical values, class names, labels: not a str
    (or None where allowed) or containing NUL;
  - numbers (numeric features, score, scores, value, numeric labels) that are NaN, infinite,
    not real numbers, or bool; score outside [0, 1];
  - more than MAX_FEATURES features or MAX_SCORES scores; features not a dict; scores not a
    list/tuple of numbers or a dict of class name -> number;
  - status other than "ok" or "error"; latency_us, tokens or event_time_ms negative or too
    large for the C type;
  - any call on a closed client; an option of Client() out of range.
A call on a client that this process inherited across fork() raises ForkedError: open a new
Client in the child (after the fork, e.g. in gunicorn's post_fork hook); close() and garbage
collection of the inherited one are safe and never hang.
bool is refused as a feature value on purpose: whether a flag is numeric (0/1) or categorical
("true"/"false") decides which drift statistics apply, so say which with int(flag) or
str(flag). An event too large to encode (more than MAX_MESSAGE_BYTES) depends on the data, not
on the code, so it is dropped and counted like a full queue: capture returns False.

A Client may be shared by every thread of the process; do not close it while other threads
still use it.
"""
import ctypes
import math
import numbers
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _library

__all__ = [
    "Client", "ForkedError", "strerror", "err_name", "DEFAULT_ENDPOINT", "MAX_FEATURES",
    "MAX_SCORES", "MAX_MESSAGE_BYTES", "FeatureValue", "Scores",
]

# A feature's value: a number (numeric), a str (categorical) or None (missing).
FeatureValue = Union[float, int, str, None]
# Per-class scores: a list, or class name -> score.
Scores = Union[Sequence[float], Mapping[str, float]]

DEFAULT_ENDPOINT = "ipc:///run/modelwatch/agent.sock"

# Mirrors of modelwatch.h.
MAX_FEATURES = 512
MAX_SCORES = 1024
MAX_MESSAGE_BYTES = 65536
EINVAL = -1
ENOMEM = -2
EFULL = -3
EAGAIN = -4
ETOOBIG = -6
ETRANSPORT = -13
EFORKED = -17

_STATUS = {"ok": 1, "error": 2}
_FEATURE_NUMERIC = 1
_FEATURE_CATEGORICAL = 2
_FEATURE_MISSING = 3
_UINT64_LIMIT = 1 << 64
_INT64_LIMIT = 1 << 63


class _Feature(ctypes.Structure):
    """struct mw_feature"""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("kind", ctypes.c_int),  # enum mw_feature_kind
        ("numeric", ctypes.c_double),
        ("categorical", ctypes.c_char_p),
    ]


class _Event(ctypes.Structure):
    """struct mw_event, field for field."""
    _fields_ = [
        ("model", ctypes.c_char_p),
        ("version", ctypes.c_char_p),
        ("prediction_id", ctypes.c_char_p),
        ("event_time_ms", ctypes.c_int64),
        ("latency_us", ctypes.c_uint64),
        ("status", ctypes.c_int),  # enum mw_status
        ("error_code", ctypes.c_char_p),
        ("features", ctypes.POINTER(_Feature)),
        ("n_features", ctypes.c_size_t),
        ("predicted_class", ctypes.c_char_p),
        ("has_score", ctypes.c_int),
        ("score", ctypes.c_double),
        ("scores", ctypes.POINTER(ctypes.c_double)),
        ("class_names", ctypes.POINTER(ctypes.c_char_p)),
        ("n_scores", ctypes.c_size_t),
        ("has_value", ctypes.c_int),
        ("value", ctypes.c_double),
        ("input_tokens", ctypes.c_uint64),
        ("output_tokens", ctypes.c_uint64),
    ]


class _ClientOptions(ctypes.Structure):
    """struct mw_client_options"""
    _fields_ = [
        ("buffer_bytes", ctypes.c_size_t),
        ("batch_bytes", ctypes.c_size_t),
        ("flush_interval_us", ctypes.c_uint),
        ("close_timeout_ms", ctypes.c_uint),
        ("unbuffered", ctypes.c_int),
    ]


class _ClientCounts(ctypes.Structure):
    """struct mw_client_counts"""
    _fields_ = [("sent", ctypes.c_uint64), ("dropped", ctypes.c_uint64)]


_lib = _library.load()


def _prototype(name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


try:
    _c_strerror = _prototype("mw_strerror", ctypes.c_char_p, ctypes.c_int)
    _c_err_name = _prototype("mw_err_name", ctypes.c_char_p, ctypes.c_int)
except AttributeError:  # a libmodelwatch.so built without them exported: use the mirror below
    _c_strerror = _c_err_name = None
_c_open_ex = _prototype("mw_client_open_ex", ctypes.c_int, ctypes.c_char_p,
                        ctypes.POINTER(_ClientOptions), ctypes.POINTER(ctypes.c_void_p))
_c_flush = _prototype("mw_client_flush", ctypes.c_int, ctypes.c_void_p, ctypes.c_uint)
_c_wait_ready = _prototype("mw_client_wait_ready", ctypes.c_int, ctypes.c_void_p, ctypes.c_uint)
_c_close_counted = _prototype("mw_client_close_counted", None, ctypes.c_void_p,
                              ctypes.POINTER(_ClientCounts))
_c_capture = _prototype("mw_capture", ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_Event))


class _FeedbackOptions(ctypes.Structure):
    """Mirror of struct mw_feedback_options."""
    _fields_ = [("event_time_ms", ctypes.c_int64)]


_c_feedback_ex = _prototype("mw_feedback_ex", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                            ctypes.POINTER(_FeedbackOptions))
_c_feedback_value_ex = _prototype("mw_feedback_value_ex", ctypes.c_int, ctypes.c_void_p,
                                  ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                  ctypes.c_double, ctypes.POINTER(_FeedbackOptions))
_c_dropped = _prototype("mw_client_dropped", ctypes.c_uint64, ctypes.c_void_p)
_c_sent = _prototype("mw_client_sent", ctypes.c_uint64, ctypes.c_void_p)

_byref = ctypes.byref
_isfinite = math.isfinite

# Encoded names (models, versions, feature names) seen before, so the steady state of a model
# server — the same few names on every call — encodes nothing. Bounded; the GIL makes the dict
# operations atomic.
_NAME_CACHE: Dict[str, bytes] = {}
_NAME_CACHE_MAX = 4096


# MW_ERRNO_MAP of modelwatch.h, for libraries that do not export mw_strerror/mw_err_name.
_ERRNO_MAP = {
    0: ("MW_OK", "success"),
    -1: ("MW_EINVAL", "invalid argument"),
    -2: ("MW_ENOMEM", "out of memory"),
    -3: ("MW_EFULL", "queue or buffer full"),
    -4: ("MW_EAGAIN", "resource temporarily unavailable"),
    -5: ("MW_EIO", "input/output error"),
    -6: ("MW_ETOOBIG", "message too large"),
    -7: ("MW_EPARSE", "malformed input"),
    -8: ("MW_ECONFIG", "invalid configuration"),
    -9: ("MW_ENOTFOUND", "not found"),
    -10: ("MW_EKAFKA", "Kafka error"),
    -11: ("MW_EREDIS", "Redis error"),
    -12: ("MW_ECOMPRESS", "compression error"),
    -13: ("MW_ETRANSPORT", "transport error"),
    -14: ("MW_ECLOSED", "closed"),
    -15: ("MW_ECORRUPT", "data corrupt"),
    -16: ("MW_ESYS", "system call failed"),
    -17: ("MW_EFORKED", "client inherited across fork(); open one in this process"),
}


class ForkedError(RuntimeError):
    """A call on a Client this process inherited across fork(); open one in this process."""


def strerror(code: int) -> str:
    """Text of an MW_E* code (a negative int), e.g. strerror(-3) == "queue or buffer full"."""
    code = int(code)
    if _c_strerror is not None:
        text: str = _c_strerror(code).decode()
        return text
    return _ERRNO_MAP.get(code, (None, "unknown error"))[1]


def err_name(code: int) -> str:
    """Symbolic name of an MW_E* code, e.g. err_name(-3) == "MW_EFULL"."""
    code = int(code)
    if _c_err_name is not None:
        name: str = _c_err_name(code).decode()
        return name
    return _ERRNO_MAP.get(code, ("MW_UNKNOWN", None))[0]


def _text(value: Any, what: str, empty_ok: bool = True) -> bytes:
    """str -> UTF-8 bytes for C, or ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"modelwatch: {what} must be a str, not {type(value).__name__}")
    if not value and not empty_ok:
        raise ValueError(f"modelwatch: {what} must not be empty")
    if "\0" in value:
        raise ValueError(f"modelwatch: {what} must not contain NUL characters")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"modelwatch: {what} is not valid Unicode: {e}") from None


def _name(value: Any, what: str) -> bytes:
    """A non-empty name, through the cache."""
    encoded = _NAME_CACHE.get(value) if type(value) is str else None
    if encoded is None:
        encoded = _text(value, what, empty_ok=False)
        if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
            _NAME_CACHE.clear()
        _NAME_CACHE[value] = encoded
    return encoded


def _version(value: Optional[str]) -> Optional[bytes]:
    """None and "" both mean unversioned."""
    return None if value is None or value == "" else _name(value, "version")


def _optional_text(value: Optional[str], what: str) -> Optional[bytes]:
    return None if value is None else _text(value, what)


def _real(value: Any, what: str) -> float:
    """A finite real number as float, or ValueError (bool is not a number here)."""
    kind = type(value)
    if kind is not float and kind is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"modelwatch: {what} must be a finite number, not "
                             f"{kind.__name__}")
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        raise ValueError(f"modelwatch: {what} must be a finite number, got {value!r}") from None
    if not _isfinite(number):
        raise ValueError(f"modelwatch: {what} must be finite, got {value!r}")
    return number


def _integer(value: Any, what: str, limit: int) -> int:
    """An int in [0, limit), or ValueError."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"modelwatch: {what} must be an int, not {type(value).__name__}")
        value = int(value)
    if not 0 <= value < limit:
        raise ValueError(f"modelwatch: {what} must be in [0, {limit}), got {value}")
    checked: int = value
    return checked


def _features(features: Any, keep: List[Any]) -> Tuple[Any, int]:
    """A struct mw_feature array from {name: value}; returns (array or None, count)."""
    if not isinstance(features, dict):
        raise ValueError(f"modelwatch: features must be a dict of name -> value, not "
                         f"{type(features).__name__}")
    count = len(features)
    if count == 0:
        return None, 0
    if count > MAX_FEATURES:
        raise ValueError(f"modelwatch: {count} features, more than MAX_FEATURES "
                         f"({MAX_FEATURES})")
    items: List[Tuple[bytes, int, float, Optional[bytes]]] = []
    for name, value in features.items():
        name_b = _name(name, "feature name")
        kind = type(value)
        if kind is float:
            if not _isfinite(value):
                raise ValueError(f"modelwatch: feature {name!r} must be finite, got {value!r}")
            items.append((name_b, _FEATURE_NUMERIC, value, None))
        elif kind is str:
            items.append((name_b, _FEATURE_CATEGORICAL, 0.0, _text(value, f"feature {name!r}")))
        elif value is None:
            items.append((name_b, _FEATURE_MISSING, 0.0, None))
        elif isinstance(value, bool):
            raise ValueError(f"modelwatch: feature {name!r} is a bool; pass int(value) for a "
                             f"numeric or str(value) for a categorical feature")
        elif isinstance(value, str):
            items.append((name_b, _FEATURE_CATEGORICAL, 0.0,
                          _text(str(value), f"feature {name!r}")))
        else:
            items.append((name_b, _FEATURE_NUMERIC, _real(value, f"feature {name!r}"), None))
    keep.append(items)
    # `_Feature * count` is cached by ctypes: one array type per size, made once. (It takes each
    # element as a tuple of the struct's fields, which typeshed does not know.)
    array_type: Any = _Feature * count
    return array_type(*items), count


def _scores(scores: Any, keep: List[Any]) -> Tuple[Any, Any, int]:
    """(scores array, class names array or None, count) from a list or a dict."""
    names: Optional[List[bytes]]
    if isinstance(scores, dict):
        names = [_text(n, "class name") for n in scores]
        values = [_real(v, f"score of class {n!r}") for n, v in scores.items()]
    elif isinstance(scores, (list, tuple)):
        names = None
        values = [_real(v, "scores[]") for v in scores]
    else:
        raise ValueError(f"modelwatch: scores must be a list of numbers or a dict of class -> "
                         f"score, not {type(scores).__name__}")
    count = len(values)
    if count > MAX_SCORES:
        raise ValueError(f"modelwatch: {count} scores, more than MAX_SCORES ({MAX_SCORES})")
    if count == 0:
        return None, None, 0
    keep.append(names)
    return ((ctypes.c_double * count)(*values),
            (ctypes.c_char_p * count)(*names) if names is not None else None, count)


def _option(value: int, what: str, limit: int) -> int:
    if type(value) is not int or not 0 <= value < limit:
        raise ValueError(f"modelwatch: {what} must be an int in [0, {limit}), got {value!r}")
    return value


def _milliseconds(seconds: float, what: str) -> int:
    """A timeout in seconds as C's unsigned milliseconds."""
    seconds = _real(seconds, what)
    if seconds < 0:
        raise ValueError(f"modelwatch: {what} must not be negative, got {seconds!r}")
    return min(int(seconds * 1000), (1 << 32) - 1)


class Client:
    """A connection to the local modelwatch-agent (libmodelwatch's mw_client).

    Opening succeeds whether or not an agent listens yet: the connection is made and remade
    in the background, and what is captured meanwhile waits in the client's buffer for it
    (wait_ready() waits for the connection). Use as a context manager, or call close().

    The options are those of struct mw_client_options, 0 meaning the default:
    buffer_bytes (4 MiB; at least 256 KiB), batch_bytes (16 KiB), flush_interval_us (1000),
    close_timeout_ms (1000), and unbuffered (each call sends alone, and is refused until the
    agent is connected). Raises ValueError for a malformed endpoint or an option out of range,
    and OSError when the transport cannot be set up.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, buffer_bytes: int = 0,
                 batch_bytes: int = 0, flush_interval_us: int = 0, close_timeout_ms: int = 0,
                 unbuffered: bool = False) -> None:
        self._handle: Optional[int] = None
        self._final_counts = (0, 0)
        self.endpoint = endpoint
        size_limit = 1 << (8 * ctypes.sizeof(ctypes.c_size_t))
        options = _ClientOptions(
            _option(buffer_bytes, "buffer_bytes", size_limit),
            _option(batch_bytes, "batch_bytes", size_limit),
            _option(flush_interval_us, "flush_interval_us", 1 << 32),
            _option(close_timeout_ms, "close_timeout_ms", 1 << 32),
            1 if unbuffered else 0)
        handle = ctypes.c_void_p()
        rc = _c_open_ex(_text(endpoint, "endpoint", empty_ok=False), _byref(options),
                        _byref(handle))
        if rc == EINVAL:
            raise ValueError(f"modelwatch: invalid endpoint {endpoint!r}")
        if rc:
            raise OSError(f"modelwatch: cannot open a client for {endpoint!r}: "
                          f"{strerror(rc)} ({err_name(rc)})")
        self._handle = handle.value

    def close(self) -> None:
        """Close the connection, handing what is buffered to the agent first (at most
        close_timeout_ms; not at all while none is connected); what is not handed over is
        counted in `dropped`. Idempotent. In a child process that inherited the client it only
        frees the child's copy."""
        handle = self._handle
        if handle is not None:
            self._handle = None
            counts = _ClientCounts()
            _c_close_counted(handle, _byref(counts))
            self._final_counts = (counts.sent, counts.dropped)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn ctypes down already
            pass

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def sent(self) -> int:
        """Messages accepted so far (calls that returned True)."""
        handle = self._handle
        count: int = _c_sent(handle) if handle is not None else self._final_counts[0]
        return count

    @property
    def dropped(self) -> int:
        """Messages dropped so far: buffer full, event too large to encode, or still buffered
        when close() gave up on the agent."""
        handle = self._handle
        count: int = _c_dropped(handle) if handle is not None else self._final_counts[1]
        return count

    def _live_handle(self) -> int:
        handle = self._handle
        if handle is None:
            raise ValueError("modelwatch: the client is closed")
        return handle

    def _outcome(self, rc: int, what: str) -> bool:
        if rc == 0:
            return True
        if rc == EINVAL:  # the Python checks above should have caught it first
            raise ValueError(f"modelwatch: libmodelwatch refused the {what}: {strerror(rc)}")
        if rc == EFORKED:
            raise ForkedError(f"modelwatch: this client ({self.endpoint!r}) was opened in the "
                              f"parent process; open a new Client after fork()")
        # MW_EAGAIN (buffer full), MW_ETRANSPORT, MW_ETOOBIG: dropped and counted in C
        return False

    def flush(self, timeout: float = 5.0) -> bool:
        """Hand everything captured so far to the transport, waiting at most `timeout`
        seconds. Blocks (for tests, benchmarks and orderly shutdowns, not for requests).
        Returns True when all was handed over, False when the time ran out (it stays
        buffered)."""
        rc = _c_flush(self._live_handle(), _milliseconds(timeout, "timeout"))
        return rc == 0 or self._outcome(rc, "flush")

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Wait at most `timeout` seconds for the connection to an agent. Blocks (at start-up;
        captures need not wait, they are buffered). Returns True once connected, False when
        the time ran out."""
        rc = _c_wait_ready(self._live_handle(), _milliseconds(timeout, "timeout"))
        return rc == 0 or self._outcome(rc, "wait")

    def capture(self, model: str, prediction_id: str, *, version: Optional[str] = None,
                latency_us: int = 0, event_time_ms: int = 0, status: str = "ok",
                error_code: Optional[str] = None,
                features: Optional[Mapping[str, FeatureValue]] = None,
                predicted_class: Optional[str] = None, score: Optional[float] = None,
                scores: Optional[Scores] = None, value: Optional[float] = None,
                input_tokens: int = 0, output_tokens: int = 0) -> bool:
        """Capture one prediction; never blocks.

        features maps a name to a float/int (numeric), a str (categorical) or None (missing).
        scores is a list of per-class scores, or a dict class name -> score. event_time_ms is
        Unix epoch ms, 0 meaning now. Returns True when the event was accepted (it reaches the
        agent once one is connected), False when it was dropped (buffer full, event too
        large). Raises ValueError for invalid arguments (see the module documentation) and
        ForkedError in a child that inherited the client.
        """
        handle = self._live_handle()
        keep: List[Any] = []  # bytes that C points into, alive until the call returns
        status_code = _STATUS.get(status) if type(status) is str else None
        if status_code is None:
            raise ValueError(f"modelwatch: status must be 'ok' or 'error', got {status!r}")
        if features:
            feature_array, n_features = _features(features, keep)
        elif features is None or isinstance(features, dict):
            feature_array, n_features = None, 0
        else:
            raise ValueError(f"modelwatch: features must be a dict of name -> value, not "
                             f"{type(features).__name__}")
        if score is not None:
            score = _real(score, "score")
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"modelwatch: score must be in [0, 1], got {score!r}")
        if scores is not None:
            score_array, class_names, n_scores = _scores(scores, keep)
        else:
            score_array, class_names, n_scores = None, None, 0
        if value is not None:
            value = _real(value, "value")
        event = _Event(
            _name(model, "model"),
            _version(version),
            _text(prediction_id, "prediction_id", empty_ok=False),
            _integer(event_time_ms, "event_time_ms", _INT64_LIMIT),
            _integer(latency_us, "latency_us", _UINT64_LIMIT),
            status_code,
            _optional_text(error_code, "error_code"),
            feature_array,
            n_features,
            _optional_text(predicted_class, "predicted_class"),
            score is not None,
            score if score is not None else 0.0,
            score_array,
            class_names,
            n_scores,
            value is not None,
            value if value is not None else 0.0,
            _integer(input_tokens, "input_tokens", _UINT64_LIMIT),
            _integer(output_tokens, "output_tokens", _UINT64_LIMIT),
        )
        return self._outcome(_c_capture(handle, _byref(event)), "event")

    def feedback(self, model: str, prediction_id: str, label: Union[str, float],
                 version: Optional[str] = None, event_time_ms: int = 0) -> bool:
        """Report the ground-truth label of an earlier prediction; never blocks.

        label is a str (the true class) or a finite number (the true value of a regression).
        event_time_ms is when the ground truth became known, Unix epoch ms, 0 meaning now: the
        label's delay is measured from its prediction's event time to it. Returns True when
        accepted, False when dropped. Raises ValueError for invalid arguments and ForkedError
        in a child that inherited the client.
        """
        handle = self._live_handle()
        model_b = _name(model, "model")
        id_b = _text(prediction_id, "prediction_id", empty_ok=False)
        version_b = _version(version)
        options = _FeedbackOptions(_integer(event_time_ms, "event_time_ms", _INT64_LIMIT))
        if isinstance(label, str):
            rc = _c_feedback_ex(handle, model_b, version_b, id_b, _text(label, "label"),
                                _byref(options))
        elif label is None:
            raise ValueError("modelwatch: label must be a str (class) or a number (value)")
        else:
            rc = _c_feedback_value_ex(handle, model_b, version_b, id_b, _real(label, "label"),
                                      _byref(options))
        return self._outcome(rc, "feedback")

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else "open"
        return f"<modelwatch.Client {self.endpoint!r} {state} sent={self.sent} " \
               f"dropped={self.dropped}>"
