/*
 * gst-iotedge's `iotedgeasyncstate` element: sets another element's state to NULL on a GStreamer thread-pool
 * thread, so that the JS thread never blocks inside a state change.
 *
 * Why: node-gtk runs every signal handler on the JS thread and makes the emitting GStreamer thread wait for it.
 * A webrtcbin going to NULL joins its `webrtcbin:pc` thread; if that thread (or one it waits for) is inside a signal
 * emission towards JS while the JS thread is inside gst_element_set_state(NULL), neither moves and the media
 * engine hangs (seen under WebRTC connect/close churn). Here the JS thread asks, returns at once and keeps serving
 * callbacks; `null-done` (the token) is emitted from the pool thread once the state change has returned.
 *
 * It is never put in a pipeline: the engine makes one and uses its action signal.
 *   helper.emit('set-null-async', pipeline, token)  ->  later: 'null-done' (token, state-change-return)
 */
#include <gst/gst.h>

#include "gstasyncstate.h"

GST_DEBUG_CATEGORY_STATIC (gst_async_state_debug);
#define GST_CAT_DEFAULT gst_async_state_debug

struct _GstAsyncState
{
  GstElement parent;
};

G_DEFINE_TYPE (GstAsyncState, gst_async_state, GST_TYPE_ELEMENT);

enum
{
  SIGNAL_SET_NULL_ASYNC,
  SIGNAL_NULL_DONE,
  LAST_SIGNAL
};

static guint signals[LAST_SIGNAL];

typedef struct
{
  GstAsyncState *helper;
  guint token;
} NullRequest;

static void
null_request_free (gpointer data)
{
  NullRequest *request = data;
  gst_object_unref (request->helper);
  g_free (request);
}

/* On the thread pool: the state change, then the news. */
static void
do_set_null (GstElement * target, gpointer data)
{
  NullRequest *request = data;
  GstStateChangeReturn ret = gst_element_set_state (target, GST_STATE_NULL);
  GST_DEBUG_OBJECT (request->helper, "%s to NULL: %s (token %u)", GST_OBJECT_NAME (target),
      gst_element_state_change_return_get_name (ret), request->token);
  g_signal_emit (request->helper, signals[SIGNAL_NULL_DONE], 0, request->token, (gint) ret);
}

static void
gst_async_state_set_null_async (GstAsyncState * self, GstElement * target, guint token)
{
  NullRequest *request;
  g_return_if_fail (GST_IS_ELEMENT (target));
  request = g_new0 (NullRequest, 1);
  request->helper = gst_object_ref (self);
  request->token = token;
  /* gst_element_call_async holds a reference to target until do_set_null has returned. */
  gst_element_call_async (target, do_set_null, request, null_request_free);
}

static void
gst_async_state_class_init (GstAsyncStateClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gst_element_class_set_static_metadata (element_class, "gst-iotedge async state helper", "Generic",
      "Sets an element to NULL on a GStreamer thread, so that the caller's thread never blocks in it",
      "gst-iotedge");

  /* void set-null-async (GstElement *target, guint token): returns at once. */
  signals[SIGNAL_SET_NULL_ASYNC] = g_signal_new_class_handler ("set-null-async", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION, G_CALLBACK (gst_async_state_set_null_async), NULL, NULL, NULL,
      G_TYPE_NONE, 2, GST_TYPE_ELEMENT, G_TYPE_UINT);
  /* void null-done (guint token, gint state_change_return): emitted from the pool thread. */
  signals[SIGNAL_NULL_DONE] = g_signal_new ("null-done", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
      NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_INT);
}

static void
gst_async_state_init (GstAsyncState * self)
{
}

gboolean
gst_async_state_register (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (gst_async_state_debug, "iotedgeasyncstate", 0, "gst-iotedge async state helper");
  return gst_element_register (plugin, "iotedgeasyncstate", GST_RANK_NONE, GST_TYPE_ASYNC_STATE);
}
