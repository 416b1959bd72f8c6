/*
 * The seed's `inference` element: a pass-through GstBaseTransform that leaves every buffer as it is, so
 * `... ! rtph264depay ! inference ! h264parse ! ...` runs in gst-launch-1.0 and in the module alike. In the module
 * a named `inference` (`inference name=people`) marks where an analyzer taps the stream; the tap is built next to
 * it by the engine (media/AnalysisTap.ts), not in here, so this element stays a no-op that cannot break a stream.
 *
 * Why C: node-gtk cannot register GObject types, so a new element factory can only come from a real plugin.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

#include "gstasyncstate.h"
#include "gstgate.h"
#include "gsthub.h"

#ifndef PACKAGE
#define PACKAGE "gst-iotedge"
#endif
#ifndef VERSION
#define VERSION "1.0.0"
#endif

#define GST_TYPE_INFERENCE (gst_inference_get_type ())
G_DECLARE_FINAL_TYPE (GstInference, gst_inference, GST, INFERENCE, GstBaseTransform)

struct _GstInference
{
  GstBaseTransform parent;
};

G_DEFINE_TYPE (GstInference, gst_inference, GST_TYPE_BASE_TRANSFORM);

GST_DEBUG_CATEGORY_STATIC (gst_inference_debug);
#define GST_CAT_DEFAULT gst_inference_debug

/* Any caps: it sits between a depayloader and a parser as readily as after a decoder. */
static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

/* Not called while passthrough is on (transform_ip_on_passthrough is FALSE); its presence tells the base class
 * this element works in place, so it never allocates an output buffer. */
static GstFlowReturn
gst_inference_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  return GST_FLOW_OK;
}

static void
gst_inference_class_init (GstInferenceClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Inference tap", "Filter/Analyzer/Video",
      "Passes buffers through unchanged; a named one marks where gst-iotedge taps the stream for an analyzer",
      "gst-iotedge");
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_inference_transform_ip);
  /* Same buffers in and out even when a downstream element asks for a writable buffer. */
  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = FALSE;
}

static void
gst_inference_init (GstInference * self)
{
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
  /* Timestamps and QoS belong to the stream, not to this element. */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), FALSE);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (gst_inference_debug, "inference", 0, "gst-iotedge inference tap");
  return gst_element_register (plugin, "inference", GST_RANK_NONE, GST_TYPE_INFERENCE)
      && gst_async_state_register (plugin) && gst_iotedge_hub_register (plugin)
      && gst_iotedge_gate_register (plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, iotedgeinference,
    "gst-iotedge's inference tap element", plugin_init, VERSION, "MIT/X11", PACKAGE, "gst-iotedge")
