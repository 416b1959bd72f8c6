/*
 * gst-iotedge's `iotedgegate` element: `valve drop-mode=forward-sticky-events` that keeps buffer lists whole.
 *
 * Why: in the WebRTC fan-out each viewer's webrtcbin sits behind a gate that opens once its DTLS is up. rtph264pay
 * pushes the packets of a fragmented frame as one GstBufferList, and webrtcbin's send chain (rtpbin, srtpenc,
 * funnel, nicesink) takes lists; `valve` has no chain_list, so it split each list into single buffers and every
 * viewer's chain ran once per packet. (libnice still writes a list one packet at a time: one sendmsg a packet.)
 *
 *   drop (boolean, default TRUE): while set, buffers, buffer lists and non-sticky serialized events are dropped;
 *   sticky events (stream-start, caps, segment, EOS) always pass, so downstream knows the caps before it flows.
 */
#include <gst/gst.h>

#include "gstgate.h"

GST_DEBUG_CATEGORY_STATIC (gst_iotedge_gate_debug);
#define GST_CAT_DEFAULT gst_iotedge_gate_debug

struct _GstIotedgeGate
{
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  gint drop;                    /* atomic gboolean */
};

G_DEFINE_TYPE (GstIotedgeGate, gst_iotedge_gate, GST_TYPE_ELEMENT);

enum
{
  PROP_0,
  PROP_DROP,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS_ANY);

static GstFlowReturn
gst_iotedge_gate_chain (GstPad * pad, GstObject * parent, GstBuffer * buffer)
{
  GstIotedgeGate *self = GST_IOTEDGE_GATE (parent);
  if (g_atomic_int_get (&self->drop)) {
    gst_buffer_unref (buffer);
    return GST_FLOW_OK;
  }
  return gst_pad_push (self->srcpad, buffer);
}

static GstFlowReturn
gst_iotedge_gate_chain_list (GstPad * pad, GstObject * parent, GstBufferList * list)
{
  GstIotedgeGate *self = GST_IOTEDGE_GATE (parent);
  if (g_atomic_int_get (&self->drop)) {
    gst_buffer_list_unref (list);
    return GST_FLOW_OK;
  }
  return gst_pad_push_list (self->srcpad, list);
}

static gboolean
gst_iotedge_gate_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstIotedgeGate *self = GST_IOTEDGE_GATE (parent);
  if (g_atomic_int_get (&self->drop) && GST_EVENT_IS_SERIALIZED (event) && !GST_EVENT_IS_STICKY (event)) {
    gst_event_unref (event);
    return TRUE;
  }
  return gst_pad_event_default (pad, parent, event);
}

static void
gst_iotedge_gate_set_property (GObject * object, guint prop_id, const GValue * value, GParamSpec * pspec)
{
  GstIotedgeGate *self = GST_IOTEDGE_GATE (object);
  switch (prop_id) {
    case PROP_DROP:
      g_atomic_int_set (&self->drop, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gst_iotedge_gate_get_property (GObject * object, guint prop_id, GValue * value, GParamSpec * pspec)
{
  GstIotedgeGate *self = GST_IOTEDGE_GATE (object);
  switch (prop_id) {
    case PROP_DROP:
      g_value_set_boolean (value, g_atomic_int_get (&self->drop));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gst_iotedge_gate_class_init (GstIotedgeGateClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_iotedge_gate_set_property;
  gobject_class->get_property = gst_iotedge_gate_get_property;
  g_object_class_install_property (gobject_class, PROP_DROP,
      g_param_spec_boolean ("drop", "Drop", "Drop buffers, buffer lists and non-sticky events", TRUE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "gst-iotedge gate", "Filter",
      "Drops or passes data, sticky events always passed, buffer lists kept whole", "gst-iotedge");
}

static void
gst_iotedge_gate_init (GstIotedgeGate * self)
{
  self->drop = TRUE;
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_iotedge_gate_chain);
  gst_pad_set_chain_list_function (self->sinkpad, gst_iotedge_gate_chain_list);
  gst_pad_set_event_function (self->sinkpad, gst_iotedge_gate_sink_event);
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->sinkpad);
  GST_PAD_SET_PROXY_SCHEDULING (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->srcpad);
  GST_PAD_SET_PROXY_SCHEDULING (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}

gboolean
gst_iotedge_gate_register (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (gst_iotedge_gate_debug, "iotedgegate", 0, "gst-iotedge gate");
  return gst_element_register (plugin, "iotedgegate", GST_RANK_NONE, GST_TYPE_IOTEDGE_GATE);
}
