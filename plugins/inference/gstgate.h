#ifndef GST_IOTEDGE_GATE_H
#define GST_IOTEDGE_GATE_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_IOTEDGE_GATE (gst_iotedge_gate_get_type ())
G_DECLARE_FINAL_TYPE (GstIotedgeGate, gst_iotedge_gate, GST, IOTEDGE_GATE, GstElement)

gboolean gst_iotedge_gate_register (GstPlugin * plugin);

G_END_DECLS

#endif
