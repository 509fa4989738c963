// Everything renders in the browser (the build is static files with an index.html fallback).
import '../app.css';
import { initI18n } from '$lib/i18n';
import { fetchCluster, fetchSystemInfo } from '@temporalio/ui/services/cluster-service';
import { fetchNamespaces } from '@temporalio/ui/services/namespaces-service';
import { fetchSettings } from '@temporalio/ui/services/settings-service';

export const ssr = false;
export const prerender = false;

export async function load({ fetch }) {
  await initI18n();
  const settings = await fetchSettings(fetch);
  fetchNamespaces(settings, fetch);
  const [cluster, systemInfo] = await Promise.all([
    fetchCluster(settings, fetch),
    fetchSystemInfo(settings, fetch),
  ]);
  return { settings, cluster, systemInfo };
}
