/** Server certificates for HTTPS and RTSPS, loaded in the control plane and handed to both servers. */
export { CertificateError, checkCertificate, loadCertificateFiles } from './certificate.js';
export type { CertificateSource, ServerCertificate } from './certificate.js';
export { CertificateManager } from './CertificateManager.js';
export type { CertificateManagerEvents, CertificateManagerOptions } from './CertificateManager.js';
export { generateSelfSigned } from './selfSigned.js';
export { parseTlsSettings, TLS_KEY } from './settings.js';
export type { ResolvedTls, TlsSettings } from './settings.js';
export { requestServerCertificate, workloadIdentityFromEnv, WorkloadApiError } from './workloadApi.js';
export type { WorkloadIdentity } from './workloadApi.js';
