"""The public path of RT Studio's document hook, `rt_studio.handler.on_document_event`: RT
Studio's own hooks.py names it, and so may an app's doc_events, for a method of its own that a
Method rule should hear (see the rule form's help). The hook lives in rt_studio/save/handler.py.
"""

from rt_studio.save.handler import on_document_event

__all__ = ["on_document_event"]
