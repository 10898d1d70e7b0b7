"""Warnings that point at the user's line, not into the package."""

import os
import sys
import warnings

import joblib
import sklearn

__all__ = ["warn"]


def _folder(module):
    return os.path.dirname(os.path.abspath(module.__file__)) + os.sep


# scikit-learn's wrappers (_fit_context, meta-estimators, search) and joblib's
# loop stand between the user's call and ours: the warning points past them too
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_INTERNAL = (_PACKAGE, _folder(sklearn), _folder(joblib))


def warn(message, category=UserWarning):
    """``warnings.warn`` at the first frame outside skbalance and scikit-learn.

    The ``stacklevel`` is counted at run time, so a warning raised deep in a
    fit (through ``fit_problem``, a meta-estimator or a replicate) names the
    line of the user's code that called in.

    Parameters
    ----------
    message : str
    category : type, default=UserWarning

    Examples
    --------
    >>> import warnings
    >>> from skbalance.utils._warnings import warn
    >>> with warnings.catch_warnings(record=True) as record:
    ...     warnings.simplefilter("always")
    ...     warn("careful")
    >>> record[0].filename == __file__ or record[0].filename.startswith("<doctest")
    True
    """
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
