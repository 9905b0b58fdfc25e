"""modelwatch — capture ML predictions and labels from Python, for the local modelwatch-agent.

A thin ctypes binding of libmodelwatch (the C library of include/modelwatch.h), standard
library only. One call per prediction encodes a protobuf message in C and hands it to the
agent over nanomsg without waiting; when the agent is absent or full the message is dropped
and counted, and the call returns False. Telemetry never blocks or fails the model's request;
only a programming error (an invalid argument) raises.

    import modelwatch

    with modelwatch.Client("ipc:///run/modelwatch/agent.sock") as mw:
        mw.capture("churn", "req-17", version="v3", latency_us=830,
                   features={"age": 42, "country": "fr", "tenure": None},
                   predicted_class="churn", score=0.91)
        ...
        mw.feedback("churn", "req-17", "churn", version="v3")

The shared library is found through the environment variable MODELWATCH_LIB (a path to
libmodelwatch.so), or else where the dynamic linker finds it (ctypes.util.find_library). If
neither finds it, importing this module raises ImportError.

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
  - any call on a closed client.
bool is refused as a feature value on purpose: whether a flag is numeric (0/1) or categorical
("true"/"false") decides which drift statistics apply, so say which with int(flag) or
str(flag). An event too large to encode (more than MAX_MESSAGE_BYTES) depends on the data, not
on the code, so it is dropped and counted like a full queue: capture returns False.

A Client may be shared by every thread of the process; do not close it while other threads
still use it.
"""
import ctypes
import ctypes.util
import math
import numbers
import os

__all__ = [
    "Client", "strerror", "err_name", "DEFAULT_ENDPOINT", "MAX_FEATURES", "MAX_SCORES",
    "MAX_MESSAGE_BYTES",
]

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


def _load_library():
    path = os.environ.get("MODELWATCH_LIB")
    if path:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(f"modelwatch: cannot load the library named by MODELWATCH_LIB="
                              f"{path!r}: {e}") from e
    name = ctypes.util.find_library("modelwatch")
    if name is None:
        raise ImportError("modelwatch: libmodelwatch was not found; set MODELWATCH_LIB to the "
                          "path of libmodelwatch.so (for a build tree: "
                          "<build>/agent/client/libmodelwatch.so) or install the library where "
                          "the dynamic linker finds it")
    try:
        return ctypes.CDLL(name)
    except OSError as e:
        raise ImportError(f"modelwatch: cannot load {name!r} (set MODELWATCH_LIB to choose the "
                          f"library): {e}") from e


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


_lib = _load_library()


def _prototype(name, restype, *argtypes):
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


try:
    _c_strerror = _prototype("mw_strerror", ctypes.c_char_p, ctypes.c_int)
    _c_err_name = _prototype("mw_err_name", ctypes.c_char_p, ctypes.c_int)
except AttributeError:  # a libmodelwatch.so built without them exported: use the mirror below
    _c_strerror = _c_err_name = None
_c_open = _prototype("mw_client_open", ctypes.c_int, ctypes.c_char_p,
                     ctypes.POINTER(ctypes.c_void_p))
_c_close = _prototype("mw_client_close", None, ctypes.c_void_p)
_c_capture = _prototype("mw_capture", ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_Event))
_c_feedback = _prototype("mw_feedback", ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                         ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p)
_c_feedback_value = _prototype("mw_feedback_value", ctypes.c_int, ctypes.c_void_p,
                               ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_double)


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
_NAME_CACHE = {}
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


def strerror(code):
    """Text of an MW_E* code (a negative int), e.g. strerror(-3) == "queue or buffer full"."""
    code = int(code)
    if _c_strerror is not None:
        return _c_strerror(code).decode()
    return _ERRNO_MAP.get(code, (None, "unknown error"))[1]


def err_name(code):
    """Symbolic name of an MW_E* code, e.g. err_name(-3) == "MW_EFULL"."""
    code = int(code)
    if _c_err_name is not None:
        return _c_err_name(code).decode()
    return _ERRNO_MAP.get(code, ("MW_UNKNOWN", None))[0]


def _text(value, what, empty_ok=True):
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


def _name(value, what):
    """A non-empty name, through the cache."""
    encoded = _NAME_CACHE.get(value) if type(value) is str else None
    if encoded is None:
        encoded = _text(value, what, empty_ok=False)
        if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
            _NAME_CACHE.clear()
        _NAME_CACHE[value] = encoded
    return encoded


def _version(value):
    """None and "" both mean unversioned."""
    return None if value is None or value == "" else _name(value, "version")


def _optional_text(value, what):
    return None if value is None else _text(value, what)


def _real(value, what):
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


def _integer(value, what, limit):
    """An int in [0, limit), or ValueError."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"modelwatch: {what} must be an int, not {type(value).__name__}")
        value = int(value)
    if not 0 <= value < limit:
        raise ValueError(f"modelwatch: {what} must be in [0, {limit}), got {value}")
    return value


def _features(features, keep):
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
    items = []
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
    # `_Feature * count` is cached by ctypes: one array type per size, made once.
    return (_Feature * count)(*items), count


def _scores(scores, keep):
    """(scores array, class names array or None, count) from a list or a dict."""
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


class Client:
    """A connection to the local modelwatch-agent (libmodelwatch's mw_client).

    Opening succeeds whether or not an agent listens yet: the connection is made and remade
    in the background, and messages sent while there is none are dropped and counted. Use as
    a context manager, or call close(). Raises ValueError for a malformed endpoint and OSError
    when the transport cannot be set up.
    """

    def __init__(self, endpoint=DEFAULT_ENDPOINT):
        handle = ctypes.c_void_p()
        rc = _c_open(_text(endpoint, "endpoint", empty_ok=False), _byref(handle))
        if rc == EINVAL:
            raise ValueError(f"modelwatch: invalid endpoint {endpoint!r}")
        if rc:
            raise OSError(f"modelwatch: cannot open a client for {endpoint!r}: "
                          f"{strerror(rc)} ({err_name(rc)})")
        self._handle = handle.value
        self._final_counts = (0, 0)
        self.endpoint = endpoint

    def close(self):
        """Close the connection. Messages not yet handed to the agent are lost. Idempotent."""
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._final_counts = (_c_sent(handle), _c_dropped(handle))
            self._handle = None
            _c_close(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn ctypes down already
            pass

    @property
    def closed(self):
        return self._handle is None

    @property
    def sent(self):
        """Messages handed to the agent so far."""
        handle = self._handle
        return _c_sent(handle) if handle is not None else self._final_counts[0]

    @property
    def dropped(self):
        """Messages dropped so far: agent absent or full, or event too large to encode."""
        handle = self._handle
        return _c_dropped(handle) if handle is not None else self._final_counts[1]

    def _live_handle(self):
        handle = self._handle
        if handle is None:
            raise ValueError("modelwatch: the client is closed")
        return handle

    @staticmethod
    def _outcome(rc, what):
        if rc == 0:
            return True
        if rc == EINVAL:  # the Python checks above should have caught it first
            raise ValueError(f"modelwatch: libmodelwatch refused the {what}: {strerror(rc)}")
        # MW_EAGAIN, MW_ETRANSPORT, MW_ETOOBIG, MW_EFORKED (a client inherited across fork():
        # open one in the child): dropped and counted in C
        return False

    def capture(self, model, prediction_id, *, version=None, latency_us=0, event_time_ms=0,
                status="ok", error_code=None, features=None, predicted_class=None, score=None,
                scores=None, value=None, input_tokens=0, output_tokens=0):
        """Capture one prediction; never blocks.

        features maps a name to a float/int (numeric), a str (categorical) or None (missing).
        scores is a list of per-class scores, or a dict class name -> score. event_time_ms is
        Unix epoch ms, 0 meaning now. Returns True when the event was handed to the agent,
        False when it was dropped (agent absent or full, event too large). Raises ValueError
        for invalid arguments (see the module documentation).
        """
        handle = self._live_handle()
        keep = []  # bytes that C points into, alive until the call returns
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

    def feedback(self, model, prediction_id, label, version=None, event_time_ms=0):
        """Report the ground-truth label of an earlier prediction; never blocks.

        label is a str (the true class) or a finite number (the true value of a regression).
        event_time_ms is when the ground truth became known, Unix epoch ms, 0 meaning now: the
        label's delay is measured from its prediction's event time to it. Returns True when
        handed to the agent, False when dropped. Raises ValueError for invalid arguments.
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

    def __repr__(self):
        state = "closed" if self._handle is None else "open"
        return f"<modelwatch.Client {self.endpoint!r} {state} sent={self.sent} " \
               f"dropped={self.dropped}>"
