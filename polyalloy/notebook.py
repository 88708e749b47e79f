"""A Jupyter panel over a ``polyalloy.live.LiveSession`` (needs the ``notebook`` extra: ipywidgets).

``panel(session)`` returns a widget box: the rendered frame beside a slider per live
parameter (``LiveSession.knobs``), a play/pause control that steps the simulation and redraws
on each tick, and step / reset / view buttons. Without ipywidgets, use the session directly:
``session.step()``, ``session.set(...)``, ``session.render()``.
"""
from __future__ import annotations

import io
import math

from polyalloy.errors import ConfigError


def png_bytes(image) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes (for ``ipywidgets.Image`` or ``IPython.display``)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def panel(session, interval_ms: int = 100):
    """The widget panel of ``session`` (see the module docstring); ``interval_ms`` between
    frames while playing (the frame itself may take longer on a CPU)."""
    try:
        import ipywidgets as w
    except ImportError:
        raise ConfigError("the notebook panel needs ipywidgets: pip install 'polyalloy[notebook]'") from None
    image = w.Image(value=png_bytes(session.render()), format="png")
    status = w.HTML()

    def redraw():
        image.value = png_bytes(session.render())
        status.value = "<pre>" + session.status() + "</pre>"

    sliders = []
    for k in session.knobs():
        cur = session.get(k.key)
        if k.log:
            s = w.FloatLogSlider(value=max(cur, k.lo), base=10, min=math.log10(k.lo), max=math.log10(k.hi),
                                 description=k.label, continuous_update=False)
        else:
            s = w.FloatSlider(value=cur, min=k.lo, max=k.hi, description=k.label, continuous_update=False)
        s.style.description_width = "initial"

        def changed(change, key=k.key):
            session.set(key, change["new"])
        s.observe(changed, names="value")
        sliders.append(s)

    play = w.Play(interval=interval_ms, max=10 ** 9, description="run")

    def tick(change):
        session.step()
        redraw()
    play.observe(tick, names="value")
    buttons = []
    for label, action in (("step", lambda: session.step()), ("reset", session.reset),
                          ("surface / points", lambda: setattr(session, "view",
                                                               "points" if session.view == "surface" else "surface"))):
        b = w.Button(description=label)
        b.on_click(lambda _b, act=action: (act(), redraw()))
        buttons.append(b)
    redraw()
    return w.HBox([w.VBox([image, status]), w.VBox([w.HBox([play] + buttons)] + sliders)])
